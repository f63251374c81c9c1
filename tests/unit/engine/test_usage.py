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
    size = usage.tree_size_kb(str(scratch))
    assert 1024 <= size < 1024 + 64
    assert usage.tree_size_kb(str(tmp_path / "missing")) == 0


def test_network_bytes_sum_interfaces():
    assert usage.network_bytes({"networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 3},
                                             "eth1": {"rx_bytes": 5, "tx_bytes": 4}}}) == (15, 7)
    assert usage.network_bytes({}) == (0, 0)
