"""Kill signals, exit by signal, launcher state, cgroup placement and usage reading (no engine)."""
from __future__ import annotations

import os
import signal

import classad2
import pytest
from testpaths import FIXTURES

from condor_docker.agent import launcher_watch
from condor_docker.core import ads, request
from condor_docker.core.failures import Code
from condor_docker.engine import usage
from condor_docker.engine.lifecycle import ExitResult, signal_of_exit_code
from condor_docker.host import cgroups
from condor_docker.starter import launch


# -- the job's kill signals ------------------------------------------------------------
@pytest.mark.parametrize("value, number", [
    ("SIGUSR1", signal.SIGUSR1), ("usr2", signal.SIGUSR2), ("SIGINT", signal.SIGINT), (10, 10), ("15", 15),
    ("SIGBOGUS", None), ("", None), (0, None), (999, None), (True, None), (1.5, None)])
def test_signal_number_reads_names_and_numbers_like_htcondor(value, number):
    assert launch.signal_number(value) == number


def test_kill_signals_come_from_killsig_removekillsig_holdkillsig():
    ad = classad2.parseOne('KillSig = "SIGUSR1"\nRemoveKillSig = 12\nHoldKillSig = "SIGWINCH"\n')
    found = launch.kill_signals(ad)
    assert set(found) == {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, 12}


def test_uncatchable_or_suspend_signals_are_never_kill_signals():
    ad = classad2.parseOne('KillSig = "SIGKILL"\nRemoveKillSig = "SIGSTOP"\nHoldKillSig = "SIGCONT"\n')
    assert launch.kill_signals(ad) == launch.RELAYED


def test_the_real_job_ad_has_the_default_signals():
    assert launch.kill_signals(ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))) == launch.RELAYED
    assert launch.kill_signals(None) == launch.RELAYED


# -- exit by signal -----------------------------------------------------------------------
@pytest.mark.parametrize("code, signum", [(0, None), (1, None), (128, None), (129, 1), (137, 9), (139, 11),
                                          (143, 15), (128 + signal.NSIG - 1, signal.NSIG - 1),
                                          (128 + signal.NSIG, None), (255, None)])
def test_exit_code_above_128_is_a_signal(code, signum):
    assert signal_of_exit_code(code) == signum


def test_exit_result_keeps_usage_and_tolerates_unknown_usage_fields():
    result = ExitResult(None, 11, usage=usage.Usage(1.5, 0.25, 64, 10, 20, 300))
    again = ExitResult.from_dict(result.to_dict() | {"usage": result.to_dict()["usage"] | {"future": 1}})
    assert again.signal == 11 and again.usage == result.usage


def test_finish_dies_by_the_containers_signal(monkeypatch):
    died = []
    monkeypatch.setattr(launch, "_die_by_signal", lambda signum: died.append(signum) or 128 + signum)
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    assert launch.finish({"ok": True, "result": {"exit_code": None, "signal": 11}}) == 139
    assert died == [11]


def test_over_disk_exits_137_with_a_hold(monkeypatch, capsys):
    reported = []
    monkeypatch.setattr(launch.chirp, "set_delayed", lambda attrs, **kw: reported.append(attrs) or True)
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    failure = {"code": int(Code.OVER_DISK), "reason": "Docker job has gone over its disk limit of 10 KB"}
    assert launch.finish({"ok": True, "result": {"signal": 9, "failure": failure}}) == 137
    assert reported[0]["ChirpCondorDockerHoldSubCode"] == 103
    assert "over its disk limit" in capsys.readouterr().err


def test_usage_is_not_reported_without_chirp(monkeypatch):
    monkeypatch.delenv("_CONDOR_CHIRP_CONFIG", raising=False)
    assert launch.report_usage({"cpu_user_s": 1.0}) is False


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
    (V1_IN_JOB, True, "cgroupfs", "/htcondor"),             # v2: no controllers below a busy cgroup
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


def test_without_a_job_cgroup_the_container_gets_its_own_parent():
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", None, "cgroupfs") == "/condor_docker/HTCJob_1_0_slot1_1"
    assert cgroups.container_cgroup_parent("HTCJob_1_0_slot1_1", None, "systemd") is None
    assert cgroups.container_cgroup_parent("a/b", None, "cgroupfs") is None


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


# -- the disk limit comes from the slot ---------------------------------------------------------
def test_disk_limit_is_the_slots_disk():
    job = ads.read_ad_file(os.path.join(FIXTURES, "job.ad"))
    machine = ads.read_ad_file(os.path.join(FIXTURES, "machine.ad"))
    req = request.from_ads(job, machine, uid=1000, gid=1000, scratch_dir="/x", slot="slot1_1")
    assert req.disk_kb == 2048
    del machine["Disk"]
    assert request.from_ads(job, machine, uid=1000, gid=1000, scratch_dir="/x", slot="slot1_1").disk_kb == 125
