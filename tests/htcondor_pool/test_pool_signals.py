"""A docker job under the real starter's signals: its own kill signal and grace, suspend, exit by signal.

What the starter sends is read from its sources (OsProc/VanillaProc): the job's
KillSig (vacate), RemoveKillSig (condor_rm) or HoldKillSig (condor_hold), SIGTERM
when unset, to the job process (our launcher); SIGKILL after JobMaxVacateTime;
SIGSTOP/SIGCONT (or the freezer) for condor_suspend/condor_continue.
"""
from __future__ import annotations

import os
import re
import time

import pytest
from poolfixture import REGISTRY_IMAGE

# Traps USR1: says so on stderr (our agent logs the container's end) and exits 0 by itself;
# without the trap, USR1 would kill the shell (exit by signal 10).
TRAPPING_JOB = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'trap ""echo got-usr1 > $_CONDOR_SCRATCH_DIR/marker; exit 0"" USR1; echo started; while true; do sleep 1; done'"
transfer_executable = false
output = out.txt
error = err.txt
log = job.log
request_memory = 64
{{extra}}
queue
"""


def _submit_running(pool, user, extra="", signal_attr="kill_sig"):
    job = pool.submit(TRAPPING_JOB.replace("{extra}", f"{signal_attr} = SIGUSR1\n{extra}"), user=user)
    pool.wait(job, "running", timeout=120)
    _wait_container(pool, job)
    time.sleep(1.0)   # the shell's trap is set right after start
    return job


def _wait_container(pool, job):
    def running():
        for container in pool.managed_containers():
            container.reload()
            if container.labels.get("org.condor_docker.cluster") == str(job.cluster) and container.status == "running":
                return container
        return None
    return pool.wait_for(running, 60, f"the container of {job.cluster}.0 runs")


def _launch_result(pool, job, timeout=90):
    lines = pool.wait_for(lambda: [l for l in pool.agent_log().splitlines()
                                   if f"job={job.cluster}.0 " in l and "op=launch" in l and "result=" in l],
                          timeout, f"the agent's launch line of {job.cluster}.0")
    return lines[-1]


def _stop_signal_logged(pool, signum):
    return re.search(rf"stopping HTCJob_\S+ with signal {signum},", pool.agent_log())


# (HTCondor 25.0.13 soft-kills a job being held with its KillSig, not its HoldKillSig [seen]: the
# container got SIGTERM for `hold_kill_sig = SIGUSR1` alone; we relay whatever the starter sends.)
@pytest.mark.parametrize("action, signal_attr", [("condor_rm", "kill_sig"), ("condor_hold", "kill_sig"),
                                                  ("condor_rm", "remove_kill_sig")])
def test_rm_and_hold_deliver_the_jobs_kill_signal(pool, pool_job_user, action, signal_attr):
    job = _submit_running(pool, pool_job_user, signal_attr=signal_attr)
    pool.condor(action, str(job.cluster), user=pool_job_user)
    line = _launch_result(pool, job)
    assert "exit=exited_with_code_0" in line, (line, pool.agent_log()[-3000:])   # the trap ran: exit 0
    assert _stop_signal_logged(pool, 10), pool.agent_log()[-3000:]
    if action == "condor_hold":
        pool.wait(job, "held", timeout=60)
        pool.rm(job)


def test_vacate_delivers_the_kill_signal(pool, pool_job_user):
    # after the vacate the job would be matched again; this requirement keeps it idle instead
    job = _submit_running(pool, pool_job_user, "requirements = (MY.NumJobStarts =?= 0)")
    pool.condor("condor_vacate_job", str(job.cluster), user=pool_job_user)
    line = _launch_result(pool, job)
    assert "exit=exited_with_code_0" in line, line            # the trap ran: it got SIGUSR1
    assert _stop_signal_logged(pool, 10), pool.agent_log()[-3000:]
    pool.wait(job, "idle", timeout=60)                         # evicted, back to idle: not a completion
    pool.rm(job)


def test_a_job_ignoring_its_signal_is_hard_killed_after_its_vacate_time(pool, pool_job_user):
    submit = TRAPPING_JOB.replace('exit 0"" USR1', 'echo ignored"" USR1').replace(
        "{extra}", "kill_sig = SIGUSR1\njob_max_vacate_time = 5")
    job = pool.submit(submit, user=pool_job_user)
    pool.wait(job, "running", timeout=120)
    _wait_container(pool, job)
    time.sleep(1.0)
    started = time.monotonic()
    pool.condor("condor_rm", str(job.cluster), user=pool_job_user)
    line = _launch_result(pool, job)
    elapsed = time.monotonic() - started
    assert _stop_signal_logged(pool, 10), pool.agent_log()[-3000:]
    assert "exit=exited_with_code_0" not in line, line       # it did not stop by itself...
    assert elapsed >= 4, elapsed                             # ...and it got its 5 s of grace
    assert elapsed < 60, elapsed


def test_exit_by_signal_is_reported_as_a_signal(pool, pool_job_user):
    job = pool.submit(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'kill -SEGV $$'"
transfer_executable = false
log = job.log
request_memory = 64
queue
""", user=pool_job_user)
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitBySignal") is True, ad
    assert ad.get("ExitSignal") == 11, ad


def _scratch_file(pool, name):
    found = [os.path.join(d, name) for d in pool.scratch_dirs() if os.path.exists(os.path.join(d, name))]
    return found[0] if found else None


def _read(path):
    try:
        with open(path) as stream:
            return stream.read()
    except (FileNotFoundError, TypeError):
        return ""


def test_suspend_stops_the_jobs_progress_and_continue_resumes_it(pool, pool_job_user):
    job = pool.submit(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'i=0; while true; do i=$((i+1)); echo $i > $_CONDOR_SCRATCH_DIR/counter; sleep 0.2; done'"
transfer_executable = false
log = job.log
request_memory = 64
queue
""", user=pool_job_user)
    pool.wait(job, "running", timeout=120)
    counter = pool.wait_for(lambda: _scratch_file(pool, "counter"), 60, "the job counts")
    pool.condor("condor_suspend", str(job.cluster), user=pool_job_user)
    pool.wait_for(lambda: pool.ad(job).get("JobStatus") == 7, 60, "the job is suspended")
    pool.wait_for(lambda: "(suspend): pausing" in pool.agent_log() or _stuck(counter), 30, "the container stops")
    frozen = _read(counter)
    time.sleep(3)
    assert _read(counter) == frozen, "the job went on counting while suspended"
    pool.condor("condor_continue", str(job.cluster), user=pool_job_user)
    pool.wait_for(lambda: _read(counter) != frozen, 60, "the job counts again after condor_continue")
    pool.rm(job, timeout=180)


def _stuck(path):
    before = _read(path)
    time.sleep(1.0)
    return before == _read(path)
