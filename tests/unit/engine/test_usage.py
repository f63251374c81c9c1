"""Usage reading (no engine): a container's parent cgroup, its totals, scratch size, network bytes."""
from __future__ import annotations

import os

import pytest

from condor_docker.engine import usage
from condor_docker.host import cgroups


def test_without_a_job_cgroup_the_container_gets_its_own_parent():
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", None, "cgroupfs") == "/condor_docker/HTCJob_1_0_slot1_1"
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", None, "systemd") is None
    assert cgroups.container_cgroup_parent("a/b", None, "cgroupfs") is None


# -- reading a container's parent cgroup ---------------------------------------------------
def test_cgroup_v1_totals(tmp_path):
    parent = "/condor_docker/HTCJob_1_0_slot1_1"
    (tmp_path / "cpuacct" / parent.lstrip("/")).mkdir(parents=True)
    (tmp_path / "memory" / parent.lstrip("/")).mkdir(parents=True)
    ticks = os.sysconf("SC_CLK_TCK")
    (tmp_path / "cpuacct" / parent.lstrip("/") / "cpuacct.stat").write_text(f"user {3 * ticks}\nsystem {ticks // 2}\n")
    (tmp_path / "memory" / parent.lstrip("/") / "memory.max_usage_in_bytes").write_text(f"{(100 << 20) + 1}\n")
    read = usage.ContainerCgroup(parent, root=str(tmp_path)).read()
    assert read.cpu_user_s == 3.0 and read.cpu_sys_s == pytest.approx(0.5, abs=0.01)
    assert read.peak_memory_mb == 101    # rounded up: a peak is never under-reported
    for path in tmp_path.glob("*/condor_docker/*/*"):   # cgroupfs dirs rmdir with their control files in
        path.unlink()
    usage.ContainerCgroup(parent, root=str(tmp_path)).remove()
    assert not (tmp_path / "memory" / parent.lstrip("/")).exists()
    assert not (tmp_path / "cpuacct" / parent.lstrip("/")).exists()


def test_cgroup_v2_totals(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    leaf = tmp_path / "condor_docker" / "j"
    leaf.mkdir(parents=True)
    (leaf / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (leaf / "memory.peak").write_text(str(64 << 20))
    read = usage.ContainerCgroup("/condor_docker/j", root=str(tmp_path)).read()
    assert (read.cpu_user_s, read.cpu_sys_s, read.peak_memory_mb) == (2.0, 0.5, 64)


def test_unreadable_cgroup_is_no_figures(tmp_path):
    assert usage.ContainerCgroup("/nope", root=str(tmp_path)).read() is None


def test_tree_size_counts_blocks_once_and_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * (4 << 20))
    scratch = tmp_path / "scratch"
    (scratch / "sub").mkdir(parents=True)
    (scratch / "sub" / "data").write_bytes(b"y" * (1 << 20))
    os.link(scratch / "sub" / "data", scratch / "hardlink")
    os.symlink(outside, scratch / "link")
    size = usage.tree_size(str(scratch)).kb
    assert 1024 <= size < 1024 + 64
    assert usage.tree_size(str(tmp_path / "missing")).kb == 0


def test_network_bytes_sum_interfaces():
    assert usage.network_bytes({"networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 3},
                                             "eth1": {"rx_bytes": 5, "tx_bytes": 4}}}) == (15, 7)
    assert usage.network_bytes({}) == (0, 0)


def test_the_walk_holds_one_level_of_fds_not_one_per_directory(tmp_path):
    """Trust round 2, item 6: 100,000 sibling directories once cost 100,000 fds of the root agent.

    Run with RLIMIT_NOFILE = 64 in a child: the old walk opened every subdirectory
    before descending, hit EMFILE and silently skipped (undercounting the job).
    """
    import subprocess
    import sys
    code = (
        "import os, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "from condor_docker.engine import usage\n"
        "root = sys.argv[1]\n"
        "for i in range(2000):\n"
        "    os.mkdir(f'{root}/{i}')\n"
        "    with open(f'{root}/{i}/f', 'wb') as f: f.write(b'x' * 8192)\n"
        "print(usage.tree_size(root))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": os.path.dirname(os.path.dirname(usage.__file__)) + "/.."})
    assert out.returncode == 0, out.stderr
    kb = int(out.stdout.split("kb=")[1].split(",")[0])
    assert kb >= 2000 * 8 and "complete=True" in out.stdout, out.stdout


def test_a_walk_past_its_caps_is_incomplete_not_small(tmp_path):
    """A million empty files first (or a very deep tree) must not hide the big ones: incomplete -> hold."""
    for i in range(50):
        (tmp_path / f"e{i}").write_text("")
    (tmp_path / "big").write_bytes(b"x" * (1 << 20))
    few = usage.tree_size(str(tmp_path), max_entries=10)
    assert not few.complete and "more than 10 entries" in few.why
    deep = tmp_path / "d"
    path = deep
    for _ in range(10):
        path = path / "a"
    path.mkdir(parents=True)
    shallow = usage.tree_size(str(tmp_path), max_depth=5)
    assert not shallow.complete and "deeper than 5 levels" in shallow.why
    assert usage.tree_size(str(tmp_path)).complete


def _linked_files(directory, count: int, links: int) -> int:
    """`count` files of 8 KB, each with `links` names in all; the KB one of them takes on disk."""
    for i in range(count):
        first = directory / f"f{i}"
        first.write_bytes(b"x" * 8192)
        for j in range(1, links):
            os.link(first, directory / f"f{i}.{j}")
    return os.stat(directory / "f0").st_blocks * 512 // 1024


def test_hard_links_count_once_while_the_walk_remembers_them(tmp_path):
    one = _linked_files(tmp_path, 2, 3)
    assert usage.tree_size(str(tmp_path)).kb == 2 * one


def test_past_the_hard_link_cap_links_are_charged_in_full_never_skipped(tmp_path):
    """A job's millions of hard links must not grow the root agent's memory: the (dev, inode) set is capped.

    With room for one inode, the file the walk meets first counts once, the other one
    at each of its three links (an over-charge); with no room, every link counts.
    """
    one = _linked_files(tmp_path, 2, 3)
    assert usage.tree_size(str(tmp_path), max_links=1).kb == one + 3 * one
    assert usage.tree_size(str(tmp_path), max_links=0).kb == 6 * one
    assert usage.tree_size(str(tmp_path), max_links=1).complete   # a full set is an over-charge, not a hold


def test_a_mount_in_the_tree_or_an_unopenable_top_makes_the_size_incomplete(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 8192)
    assert usage.tree_size(str(tmp_path / "f")).complete is False            # not a directory
    assert usage.tree_size(str(tmp_path / "gone")) == usage.TreeSize(0)       # the scratch dir is gone: nothing
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    hidden = tmp_path / "hide"
    hidden.mkdir()
    import subprocess
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(hidden)], check=True)
    try:   # a job's FUSE mount hides from root what the container writes beneath it: any mount is unmeasurable
        size = usage.tree_size(str(tmp_path))
        assert not size.complete and size.why == f"a file system is mounted on {hidden}"
    finally:
        subprocess.run(["umount", str(hidden)], check=True)
    assert usage.tree_size(str(tmp_path)).complete
