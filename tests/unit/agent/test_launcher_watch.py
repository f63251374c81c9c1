"""The launcher as the agent watches it: its HTCondor cgroup, its ancestor marks, whether it is stopped."""
from __future__ import annotations

import os
import signal

import pytest
from testpaths import FIXTURES

from condor_docker.agent import launcher_watch
from condor_docker.host import cgroups


# -- the launcher's cgroup and environment -------------------------------------------------
def _fake_proc(tmp_path, pid, cgroup_text, environ=b""):
    directory = tmp_path / "proc" / str(pid)
    directory.mkdir(parents=True)
    (directory / "cgroup").write_text(cgroup_text)
    (directory / "environ").write_bytes(environ)
    return str(tmp_path / "proc")


V1_IN_JOB = ("12:memory:/htcondor/condor_var_lib_condor_execute_slot1_1@vm\n"
             "4:cpu,cpuacct:/htcondor/condor_var_lib_condor_execute_slot1_1@vm\n"
             "3:freezer:/htcondor/condor_var_lib_condor_execute_slot1_1@vm\n0::/\n")


def test_job_cgroup_parent_is_the_launchers_htcondor_cgroup_on_v1_cgroupfs(tmp_path):
    proc = _fake_proc(tmp_path, 42, V1_IN_JOB)
    parent = cgroups.job_cgroup_parent(42, "/htcondor", cgroup_v2=False, driver="cgroupfs", proc_root=proc)
    assert parent == "/htcondor/condor_var_lib_condor_execute_slot1_1@vm"
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", parent, "cgroupfs") == \
        "/htcondor/condor_var_lib_condor_execute_slot1_1@vm/HTCJob_1_0_slot1_1"


@pytest.mark.parametrize("cgroup_text, v2, driver, prefix", [
    (V1_IN_JOB, True, "cgroupfs", "/htcondor"),             # v1 lines on v2: no unified path
    (V1_IN_JOB, False, "systemd", "/htcondor"),             # systemd driver: slices only
    (V1_IN_JOB, False, "cgroupfs", ""),                     # knob empty: off
    ("4:memory:/user.slice/user-1000.slice\n", False, "cgroupfs", "/htcondor"),   # not under HTCondor
    ("4:memory:/htcondor\n", False, "cgroupfs", "/htcondor"),                     # the base itself
    ("4:memory:/htcondor/../etc\n", False, "cgroupfs", "/htcondor"),              # no climbing out
    ("4:memory:/htcondorx/job\n", False, "cgroupfs", "/htcondor"),                # prefix is a path
])
def test_no_job_cgroup_parent_where_it_cannot_or_must_not_be_used(tmp_path, cgroup_text, v2, driver, prefix):
    proc = _fake_proc(tmp_path, 42, cgroup_text)
    assert cgroups.job_cgroup_parent(42, prefix, cgroup_v2=v2, driver=driver, proc_root=proc) is None


def test_ancestor_marks_come_from_the_kernels_copy_of_the_environment(tmp_path):
    environ = b"PATH=/bin\0_CONDOR_ANCESTOR_28115=28120:1795313719:3985419284\0_CONDOR_ANCESTOR_x=1\0" \
              b"_CONDOR_ANCESTOR_29135=29160:1795313985:1242849151\0"
    proc = _fake_proc(tmp_path, 7, "0::/\n", environ)
    assert launcher_watch.ancestor_environment(7, proc) == (
        ("_CONDOR_ANCESTOR_28115", "28120:1795313719:3985419284"),
        ("_CONDOR_ANCESTOR_29135", "29160:1795313985:1242849151"))
    assert launcher_watch.ancestor_environment(8, proc) == ()


def test_the_ancestor_marks_are_what_the_real_starter_sets():
    with open(os.path.join(FIXTURES, "launcher-environment.txt")) as stream:
        names = [line.split("=", 1)[0] for line in stream if line.startswith("_CONDOR_ANCESTOR_")]
    assert len(names) == 3   # starter, its parent, the master: procd's environment tracker needs all


def test_a_stopped_process_is_suspended():
    import subprocess

    import psutil

    child = subprocess.Popen(["sleep", "30"])
    try:
        process = psutil.Process(child.pid)
        assert not launcher_watch.is_suspended(process)
        child.send_signal(signal.SIGSTOP)
        for _ in range(50):
            if launcher_watch.is_suspended(process):
                break
            import time
            time.sleep(0.02)
        assert launcher_watch.is_suspended(process)
        child.send_signal(signal.SIGCONT)
        import time
        time.sleep(0.1)
        assert not launcher_watch.is_suspended(process)
    finally:
        child.kill()
        child.wait()
