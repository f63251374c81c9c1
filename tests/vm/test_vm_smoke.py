"""Smoke tests on the cgroup-v2 guest: the machine is what it claims, and a docker job runs.

The guest (scripts/vm/build-guest.sh) is Debian 12 with systemd on the unified cgroup v2
hierarchy and docker.io on the systemd cgroup driver: the kind of execute point the host
(cgroup v1, cgroupfs driver) cannot show. See tests/vm/README.md.
"""
from __future__ import annotations

import json
import re
import time

import pytest
from vmfixture import MEASURED

REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"
HELLO = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/echo
transfer_executable = false
arguments = hello
should_transfer_files = YES
output = out.txt
error = err.txt
log = job.log
request_memory = 32M
queue
"""
# what the schedd's history says a job used
USAGE = ("RemoteUserCpu", "RemoteSysCpu", "MemoryUsage", "ResidentSetSize", "ImageSize", "DiskUsage",
         "CpusUsage", "ChirpCondorDockerRemoteUserCpu", "ChirpCondorDockerRemoteSysCpu",
         "ChirpCondorDockerMemoryUsage", "ExitCode", "JobRunCount", "NumShadowStarts")
# HTCondor 25.13.2's starter with the shipped HOOK_JOB_EXIT: it exits while its output
# transfer child still runs; the shadow loses it and requeues the job (tests/vm/README.md)
EARLY_STARTER_EXIT = "Daemon exiting before all child processes gone"
COMPLETED, REMOVED, HELD = 4, 3, 5


def test_guest_runs_systemd_on_the_unified_cgroup_v2_hierarchy(vm):
    assert vm.ssh("test -f /sys/fs/cgroup/cgroup.controllers && echo v2").stdout.strip() == "v2"
    assert vm.ssh("stat -f -c %T /sys/fs/cgroup").stdout.strip() == "cgroup2fs"
    assert vm.ssh("readlink /proc/1/exe").stdout.strip().endswith("/systemd")
    controllers = vm.ssh("cat /sys/fs/cgroup/cgroup.controllers").stdout.split()
    assert {"cpu", "memory", "pids", "io"} <= set(controllers), controllers
    startup = vm.ssh("systemctl is-system-running --wait >/dev/null; systemd-analyze", check=False).stdout
    MEASURED["guest startup (systemd-analyze)"] = startup.splitlines()[0] if startup else "?"


def test_guest_engine_uses_the_systemd_cgroup_driver_on_cgroup_v2(vm):
    vm.set_cgroup_driver("systemd")   # the image's (a no-op unless a cgroupfs pool ran first)
    info = json.loads(vm.ssh("docker info --format '{{json .}}'").stdout)
    assert info["CgroupDriver"] == "systemd", info["CgroupDriver"]
    assert str(info["CgroupVersion"]) == "2", info["CgroupVersion"]
    MEASURED["guest engine"] = f"docker {info['ServerVersion']}, {info['CgroupDriver']} driver, " \
                               f"cgroup v{info['CgroupVersion']}, kernel {info['KernelVersion']}"


def test_guest_has_no_route_off_its_loopback(vm):
    """restrict=on and no default route: the guest reaches nothing but its own services."""
    assert vm.ssh("ip -4 route show default").stdout.strip() == ""
    assert vm.ssh("ip route get 192.0.2.1", check=False).returncode != 0


def test_pool_advertises_docker(vm_pool):
    slot = vm_pool.call("slot_ad")["ad"]
    assert slot.get("HasDocker") is True, slot
    assert str(slot.get("DockerVersion", "")).startswith("Docker version"), slot.get("DockerVersion")


def _wait_done_or_requeued(pool, job: dict, timeout: float) -> dict:
    """The job's ad once it is done, or as soon as it was started a second time (or held/removed)."""
    deadline = time.monotonic() + timeout
    ad: dict = {}
    while time.monotonic() < deadline:
        ad = pool.call("ad", **job)["ad"]
        if ad.get("JobStatus") in (COMPLETED, REMOVED, HELD) or (ad.get("NumShadowStarts") or 0) > 1:
            return ad
        time.sleep(2)
    return ad


def _explain_not_done(vm_pool, job: dict, ad: dict, seconds: float, what: str) -> None:
    """Fail (or xfail, for the known 25.13.2 early starter exit) with the logs that say why."""
    logs = vm_pool.call("logs", names=["StarterLog.slot1_1", "ShadowLog", "CondorDockerLog"])["logs"]
    job_log = vm_pool.guest.ssh(f"cat {job['dir']}/job.log", check=False).stdout
    vm_pool.call("rm", **job)
    starter = logs.get("StarterLog.slot1_1") or ""
    summary = (f"{what} job on {vm_pool.name}: JobStatus={ad.get('JobStatus')} "
               f"NumShadowStarts={ad.get('NumShadowStarts')} HoldReason={ad.get('HoldReason')!r}")
    MEASURED[f"{what} job {vm_pool.name}"] = f"NOT done after {seconds:.0f} s: {summary}"
    if EARLY_STARTER_EXIT in starter:
        lines = [line for line in starter.splitlines()
                 if any(word in line for word in ("HOOK_JOB_EXIT", "has_been_oom_killed", EARLY_STARTER_EXIT,
                                                  "Transfer exit info", "EXITING WITH"))]
        pytest.xfail(f"{summary}; the starter exits before its output transfer ends and the shadow "
                     f"requeues the job (1008 'Job not found at execution machine'): "
                     + " | ".join(lines[:5]))
    pytest.fail(f"{summary}\n--- job.log:\n{job_log[-3000:]}\n--- StarterLog:\n{starter[-4000:]}\n"
                f"--- agent log:\n{(logs.get('CondorDockerLog') or '')[-3000:]}")


def test_hello_docker_universe_job(vm_pool):
    started = time.monotonic()
    job = vm_pool.call("submit", text=HELLO, user="cdtest1")
    ad = _wait_done_or_requeued(vm_pool, job, 900)
    seconds = time.monotonic() - started
    if ad.get("JobStatus") != COMPLETED:
        _explain_not_done(vm_pool, job, ad, seconds, "hello")
    assert ad.get("ExitCode") == 0, ad
    out = vm_pool.guest.ssh(f"cat {job['dir']}/out.txt").stdout
    err = vm_pool.guest.ssh(f"cat {job['dir']}/err.txt").stdout
    assert out == "hello\n", (out, err)
    history = vm_pool.call("history", cluster=job["cluster"])["ad"] or {}
    usage = {name: history.get(name) for name in USAGE}
    MEASURED[f"hello job {vm_pool.name}"] = f"{seconds:.0f} s submit to done; condor_history: " + \
        ", ".join(f"{k}={v}" for k, v in usage.items() if v is not None)
    print("condor_history usage:", usage)
    assert usage["NumShadowStarts"] == 1, f"the job was started more than once: {usage}"


# ~60 MB held for 20 s, then a short CPU-bound loop: enough for the figures to mean something
BUSY = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'head -c 60m /dev/zero | (sleep 20; tail) > /dev/null; i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo $i'"
transfer_executable = false
should_transfer_files = YES
output = out.txt
error = err.txt
log = job.log
request_memory = 256M
queue
"""


def test_busy_job_usage_is_counted_by_htcondor(vm_pool):
    """Where the container runs and what condor_history says it used.

    HTCondor's starter (ProcFamilyDirectCgroupV2) reads cpu.stat/memory.stat of the slot's
    slice around the launcher's scope. With the cgroupfs driver the agent creates the container
    in that slice, so RemoteUserCpu must count the container's CPU loop. With the systemd driver
    no cgroup_parent reaches the slice (the engine takes systemd slice names only; HTCondor's
    slice is no systemd unit): the container stays in system.slice/docker-<id>.scope, HTCondor
    counts only the launcher, and the exact figure is ChirpCondorDockerRemoteUserCpu (xfail,
    tests/vm/README.md "Found" 3)."""
    started = time.monotonic()
    job = vm_pool.call("submit", text=BUSY, user="cdtest1")
    where = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not where:
        where = vm_pool.guest.ssh(
            "for id in $(docker ps -q --filter label=org.condor_docker.managed=true); do "
            "pid=$(docker inspect -f '{{.State.Pid}}' $id); echo container $(cat /proc/$pid/cgroup); "
            "for l in $(pgrep -f '[c]ondor_docker launch'); do echo launcher $(cat /proc/$l/cgroup); done; done",
            check=False).stdout.strip()
        if not where:
            time.sleep(2)
    probe = ""
    launcher = _cgroup_of("launcher", where)
    if vm_pool.driver == "systemd" and launcher:
        # while HTCondor's slice exists: can the systemd driver create a container in it at all?
        probe = vm_pool.guest.ssh(
            f"out=$(docker run --rm --network none --cgroup-parent={launcher.rsplit('/', 1)[0]} {REGISTRY_IMAGE} "
            f"cat /proc/self/cgroup 2>&1); rc=$?; printf '%s\\n' \"$out\" | tail -2; echo rc=$rc",
            check=False, timeout=300).stdout.strip()
        MEASURED[f"busy job {vm_pool.name}: docker run --cgroup-parent=<HTCondor's slice>"] = probe.replace("\n", " | ")
    ad = _wait_done_or_requeued(vm_pool, job, 900)
    seconds = time.monotonic() - started
    if ad.get("JobStatus") != COMPLETED:
        _explain_not_done(vm_pool, job, ad, seconds, "busy")
    out = vm_pool.guest.ssh(f"cat {job['dir']}/out.txt").stdout
    assert ad.get("ExitCode") == 0 and out == "300000\n", (ad.get("ExitCode"), out)
    history = vm_pool.call("history", cluster=job["cluster"])["ad"] or {}
    usage = {name: history.get(name) for name in USAGE}
    MEASURED[f"busy job {vm_pool.name}"] = (
        f"{seconds:.0f} s submit to done; cgroups: {' | '.join(where.splitlines()) or '?'}; condor_history: "
        + ", ".join(f"{k}={v}" for k, v in usage.items() if v is not None))
    container = _cgroup_of("container", where)
    assert container and launcher, f"no container/launcher cgroup seen while the job ran: {where!r}"
    assert re.fullmatch(r"(/.*)?/htcondor/([^/]+)\.slice/\2\.scope", launcher), \
        f"the starter did not put the launcher in a slot scope (not using cgroups directly?): {launcher}"
    job_slice = launcher.rsplit("/", 1)[0]
    exact = float(usage["ChirpCondorDockerRemoteUserCpu"] or 0)
    htcondor = float(usage["RemoteUserCpu"] or 0)
    assert exact >= 2, f"the exact CPU total (ChirpCondorDockerRemoteUserCpu) is missing or too small: {usage}"
    counted = htcondor >= max(1.0, 0.5 * exact)
    if vm_pool.driver == "cgroupfs":
        assert container.startswith(job_slice + "/"), \
            f"cgroupfs driver: the container is not in the slot's slice {job_slice}: {container}"
        assert counted, (f"HTCondor's RemoteUserCpu={htcondor} does not count the container's CPU "
                         f"(ChirpCondorDockerRemoteUserCpu={exact}) although it ran in {container}: {usage}")
        return
    assert re.fullmatch(r"/system\.slice/docker-[0-9a-f]{64}\.scope", container), \
        f"systemd driver: the container is not in the engine's own scope: {container}"
    assert probe and not probe.endswith("rc=0"), \
        f"the systemd driver did create a container with HTCondor's slice as parent: {probe}"
    assert not counted, (f"systemd driver: HTCondor's RemoteUserCpu={htcondor} now counts the container "
                         f"(exact {exact}) in {container}: update this test and docs/USAGE-ACCOUNTING.md")
    pytest.xfail(f"systemd driver: the container runs in {container}, outside HTCondor's {job_slice}; "
                 f"RemoteUserCpu={htcondor} is the launcher's, the exact figure is "
                 f"ChirpCondorDockerRemoteUserCpu={exact} (docs/USAGE-ACCOUNTING.md)")


def _cgroup_of(what: str, where: str) -> str:
    """The v2 path from a `<what> 0::<path>` line of the busy test's probe."""
    for line in where.splitlines():
        word, _, rest = line.partition(" ")
        if word == what and rest.startswith("0::"):
            return rest[3:].strip()
    return ""
