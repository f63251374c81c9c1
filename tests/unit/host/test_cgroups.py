"""Where a container goes on cgroup v2: the slot's slice HTCondor made around the launcher, or nowhere special.

Fake /proc/<pid>/cgroup files and a fake cgroup root (tmp dirs); the real layout is the one
HTCondor 25's ProcFamilyDirectCgroupV2 makes (`<starter's parent>/<BASE_CGROUP>/<uniq>.slice/
<uniq>.scope`), as seen in the tests/vm guest.
"""
from __future__ import annotations

import os

import pytest

from condor_docker.host import cgroups

SLOT = "_var_lib_condor_execute_slot1_1@cdvm"
LAUNCHER_V2 = f"0::/system.slice/htcondor/{SLOT}.slice/{SLOT}.scope\n"
SLICE = f"/system.slice/htcondor/{SLOT}.slice"
ME = os.geteuid()   # the owner the fake cgroup root's dirs have: HTCondor's root, for these tests


def _fake(tmp_path, cgroup_text: str, pid: int = 42, dirs: tuple[str, ...] = ("system.slice/htcondor",)):
    proc = tmp_path / "proc" / str(pid)
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(cgroup_text)
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    for directory in dirs:
        (root / directory).mkdir(parents=True, exist_ok=True)
    return str(tmp_path / "proc"), str(root)


def _parent(proc: str, root: str, text_prefix: str = "/htcondor", driver: str = "cgroupfs",
            trusted_uid: int = ME) -> str | None:
    return cgroups.job_cgroup_parent(42, text_prefix, cgroup_v2=True, driver=driver, proc_root=proc,
                                     root=root, trusted_uid=trusted_uid)


def test_v2_cgroupfs_container_goes_in_the_slots_slice_next_to_the_launchers_scope(tmp_path):
    proc, root = _fake(tmp_path, LAUNCHER_V2)
    assert _parent(proc, root) == SLICE
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", SLICE, "cgroupfs") == \
        f"{SLICE}/HTCJob_1_0_slot1_1"


def test_v2_base_cgroup_is_relative_to_the_starters_parent_cgroup(tmp_path):
    """HTCondor puts BASE_CGROUP under the parent of its own cgroup: any depth, or the root."""
    proc, root = _fake(tmp_path, f"0::/htcondor/{SLOT}.slice/{SLOT}.scope\n", dirs=("htcondor",))
    assert _parent(proc, root) == f"/htcondor/{SLOT}.slice"
    proc, root = _fake(tmp_path / "b", f"0::/a.slice/b.service/x/y/{SLOT}.slice/{SLOT}.scope\n",
                       dirs=("a.slice/b.service/x/y",))
    assert _parent(proc, root, "x/y") == f"/a.slice/b.service/x/y/{SLOT}.slice"


def test_v2_systemd_driver_gets_no_parent_but_the_slice_is_still_known(tmp_path):
    """The systemd driver takes a slice *name* and systemd maps it to its own path (a-b.slice is
    /a.slice/a-b.slice): HTCondor's slice is no systemd unit, no name reaches it."""
    proc, root = _fake(tmp_path, LAUNCHER_V2)
    assert _parent(proc, root, driver="systemd") is None
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", None, "systemd") is None
    assert cgroups.htcondor_job_slice(42, "/htcondor", proc_root=proc, root=root, trusted_uid=ME) == SLICE


@pytest.mark.parametrize("cgroup_text", [
    f"0::/system.slice/htcondor/{SLOT}.slice\n",                              # in the slice itself
    f"0::/system.slice/htcondor/{SLOT}.slice/{SLOT}.scope/sub\n",             # below the scope
    f"0::/system.slice/htcondor/{SLOT}.slice/other.scope\n",                  # not the slice's own scope
    f"0::/system.slice/htcondor/{SLOT}/{SLOT}.scope\n",                       # not a .slice
    f"0::/system.slice/htcondorx/{SLOT}.slice/{SLOT}.scope\n",                # the prefix is a path component
    f"0::/system.slice/other/{SLOT}.slice/{SLOT}.scope\n",                    # not under BASE_CGROUP
    f"0::/system.slice/htcondor/../{SLOT}.slice/{SLOT}.scope\n",              # no climbing
    "0::/system.slice/htcondor/.slice/.scope\n",                              # no name
    "0::/user.slice/user-1000.slice/session-3.scope\n",                       # a login shell
    "0::/\n",
    "12:memory:/htcondor/x\n4:cpu,cpuacct:/htcondor/x\n",                     # v1 lines only
    "",
])
def test_v2_no_parent_for_a_launcher_not_in_an_htcondor_slot_scope(tmp_path, cgroup_text):
    proc, root = _fake(tmp_path, cgroup_text, dirs=("system.slice/htcondor", "system.slice/other"))
    assert _parent(proc, root) is None


@pytest.mark.skipif(ME != 0, reason="needs root to give a fake cgroup to another user")
def test_v2_a_slot_shaped_tree_inside_a_users_delegated_slice_is_not_htcondors(tmp_path):
    """HTCondor chowns the slot's slice to the job's user, who may build `htcondor/x.slice/x.scope`
    below it and move a process there: an ancestor that is not root's rejects it."""
    inner = f"system.slice/htcondor/{SLOT}.slice/evil/htcondor"
    proc, root = _fake(tmp_path, f"0::/{inner}/x.slice/x.scope\n", dirs=(inner,))
    assert _parent(proc, root) == f"/{inner}/x.slice"          # root owns all of it: the shape alone passes
    os.chown(os.path.join(root, f"system.slice/htcondor/{SLOT}.slice"), 4242, 4242)
    assert _parent(proc, root) is None                        # the user's slice above it: refused


def test_v2_base_dir_owned_by_someone_else_is_not_htcondors(tmp_path):
    """A user's own delegated tree (user@<uid>.service) can have the same shape; it is theirs, not root's."""
    text = f"0::/user.slice/user-1000.slice/user@1000.service/app.slice/htcondor/{SLOT}.slice/{SLOT}.scope\n"
    proc, root = _fake(tmp_path, text, dirs=("user.slice/user-1000.slice/user@1000.service/app.slice/htcondor",))
    assert _parent(proc, root, trusted_uid=ME) == \
        f"/user.slice/user-1000.slice/user@1000.service/app.slice/htcondor/{SLOT}.slice"   # the shape is right
    assert _parent(proc, root, trusted_uid=ME + 1) is None                                # the owner is not
    if ME == 0:
        os.chown(os.path.join(root, "user.slice/user-1000.slice/user@1000.service"), 1000, 1000)
        assert _parent(proc, root) is None


def test_v2_missing_base_dir_or_knob_off_or_no_process(tmp_path):
    proc, root = _fake(tmp_path, LAUNCHER_V2, dirs=())
    assert _parent(proc, root) is None                      # no such cgroup (gone, or a fake path)
    proc, root = _fake(tmp_path / "b", LAUNCHER_V2)
    assert _parent(proc, root, "") is None                  # CONDOR_DOCKER_JOB_CGROUP_PREFIX empty: off
    assert _parent(proc, root, "/") is None
    assert cgroups.job_cgroup_parent(43, "/htcondor", cgroup_v2=True, driver="cgroupfs", proc_root=proc,
                                     root=root, trusted_uid=ME) is None   # no /proc/43


def test_default_owner_is_root(tmp_path):
    """Without trusted_uid, the base dir must belong to root (HTCondor creates it as root)."""
    proc, root = _fake(tmp_path, LAUNCHER_V2)
    expected = SLICE if ME == 0 else None
    assert cgroups.job_cgroup_parent(42, "/htcondor", cgroup_v2=True, driver="cgroupfs",
                                     proc_root=proc, root=root) == expected
