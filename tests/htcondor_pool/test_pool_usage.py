"""What a docker job used, as the schedd sees it: HTCondor's own figures and ours beside them.

The container's processes carry the launcher's `_CONDOR_ANCESTOR_*` marks, so the
starter's procd adopts them into the job's process family (docs/USAGE-ACCOUNTING.md):
RemoteUserCpu and MemoryUsage then count the container, not the launcher.  The
launcher also reports the container's exact totals (its parent cgroup) as
ChirpCondorDocker* attributes.
"""
from __future__ import annotations

from poolfixture import REGISTRY_IMAGE

# ~100 MB held for ~12 s by `tail`, then a CPU-bound shell loop of several seconds.  Only proc 3
# works: procs 0-2 exit at once, so the container is not named HTCJob_1_0_slot1_1 like the first
# job of every other test pool sharing this engine (their JOB_EXIT cleanup could remove it).
# Our pools also start at a random cluster id (poolfixture.base_config): two pools running this
# test at once both named it HTCJob_1_3_slot1_<n>_u1001, and the agent that came second refused
# it (305, 'belongs to another condor_docker agent'): proc 3 was done in seconds with ExitCode 75.
BUSY_SH = """\
#!/bin/sh
[ "$1" = 3 ] || exit 0
(head -c 100m /dev/zero; sleep 12) | tail > /dev/null
i=0
while [ $i -lt 6000000 ]; do i=$((i+1)); done
echo done $i
"""
BUSY = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = busy.sh $(Process)
transfer_executable = false
transfer_input_files = busy.sh
should_transfer_files = YES
output = out.$(Process).txt
error = err.$(Process).txt
log = job.log
request_memory = 256
queue 4
"""
WATCHED = ("RemoteUserCpu", "RemoteSysCpu", "MemoryUsage", "ResidentSetSize", "DiskUsage",
           "ChirpCondorDockerRemoteUserCpu", "ChirpCondorDockerRemoteSysCpu", "ChirpCondorDockerMemoryUsage",
           "ChirpCondorDockerDiskUsage", "ExitCode")


def _figures(ad):
    return {name: ad.get(name) for name in WATCHED}


def test_cpu_and_memory_of_the_container_reach_the_schedd(pool, pool_job_user):
    job = pool.submit(BUSY, user=pool_job_user, files={"busy.sh": BUSY_SH})
    running = pool.wait_for(lambda: pool.ad(job, 3).get("JobStatus") == 2 and pool.ad(job, 3), 120, "proc 3 runs")
    assert running
    # while it runs: HTCondor's own figures already count the container (procd adopted it).
    # The schedd has them every SHADOW_QUEUE_UPDATE_INTERVAL (5 s in our pools; HTCondor's
    # default is 900 s, so on a site condor_q shows them after 15 min or at job end).
    def rss_while_running():
        ad = pool.ad(job, 3)
        assert ad.get("JobStatus") == 2, f"proc 3 left 'running' before its 100 MB showed: {_figures(ad)}"
        return (ad.get("ResidentSetSize") or 0) >= 100 * 1024
    pool.wait_for(rss_while_running, 120, "ResidentSetSize of the running job counts the container's 100 MB")
    pool.wait(job, "done", timeout=240)
    ad = pool.ad(job, 3)
    with open(f"{job.dir}/out.3.txt") as stream:
        assert stream.read() == "done 6000000\n", (_figures(ad), open(f"{job.dir}/err.3.txt").read())
    ours_cpu = float(ad.get("ChirpCondorDockerRemoteUserCpu", 0))
    assert ours_cpu >= 2.0, _figures(ad)                 # the exact figure, from the container's cgroup
    assert int(ad.get("ChirpCondorDockerMemoryUsage", 0)) >= 100, _figures(ad)
    assert int(ad.get("ChirpCondorDockerDiskUsage", -1)) >= 0, _figures(ad)
    # HTCondor's own figures: the container's, not the launcher's (~0 s, ~30 MB). The procd sees
    # CPU at its snapshots (PROCD_MAX_SNAPSHOT_INTERVAL = 5 in our config): the last few s are lost.
    assert float(ad.get("RemoteUserCpu", 0)) >= 0.3 * ours_cpu, _figures(ad)
    assert int(ad.eval("MemoryUsage")) >= 100, _figures(ad)
    history = pool.condor("condor_history", "-limit", "1", "-af", "RemoteUserCpu", "MemoryUsage",
                          f"{job.cluster}.3", user=pool_job_user).stdout.split()
    assert history and float(history[0]) >= 0.3 * ours_cpu and int(history[1]) >= 100, history


def test_a_short_peak_is_the_jobs_memory_usage_at_the_end(pool, pool_job_user):
    """The procd's snapshots (every 5 s here) miss a peak of a second: HTCondor's own figure was
    the launcher's ~30 MB.  The access-point transform makes MemoryUsage the container's exact
    peak once the job has ended, in condor_q, condor_history and the terminated event."""
    job = pool.submit(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'dd if=/dev/zero of=/dev/null bs=180M count=2 2>/dev/null; echo peaked'"
transfer_executable = false
output = out.txt
error = err.txt
log = job.log
request_memory = 512
queue
""", user=pool_job_user)
    ad = pool.wait(job, "done", timeout=180)
    exact = int(ad.get("ChirpCondorDockerMemoryUsage", 0))
    assert exact >= 180, _figures(ad)
    assert int(ad.eval("MemoryUsage")) == exact, _figures(ad)
    history = pool.condor("condor_history", "-limit", "1", f"{job.cluster}.0", "-af", "MemoryUsage",
                          user=pool_job_user).stdout.split()
    assert history == [str(exact)], (history, _figures(ad))
    with open(f"{job.dir}/job.log") as log:
        terminated = log.read().split("Job terminated")[-1]
    # "   Memory (MB)  :  182  512  512" (usage, request, allocated)
    memory = [line.split(":")[1].split() for line in terminated.splitlines() if "Memory (MB)" in line]
    assert memory and memory[0][0] == str(exact), terminated


def test_going_over_request_disk_is_a_hold(pool, pool_job_user):
    job = pool.submit(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'head -c 20m /dev/zero > big; sleep 300'"
transfer_executable = false
log = job.log
request_memory = 64
request_disk = 4096
queue
""", user=pool_job_user)
    ad = pool.wait(job, "held", timeout=180)    # the agent checks every CONDOR_DOCKER_DISK_CHECK_PERIOD (30 s)
    assert ad.get("HoldReasonSubCode") == 103, ad
    assert "over its disk limit" in str(ad.get("HoldReason")), ad.get("HoldReason")
    pool.rm(job)
