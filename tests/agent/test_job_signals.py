"""A docker job behaves like an HTCondor job under the starter's signals (issue 10).

The launcher runs as cdtest1 exactly as the starter runs a job process; the
tests send what the real starter sends (read from its OsProc/VanillaProc):
the job's KillSig/RemoveKillSig/HoldKillSig as the soft kill, SIGKILL as the
hard kill, SIGSTOP/SIGCONT for suspend/continue (no freezer cgroup here).
"""
from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = [pytest.mark.root, pytest.mark.engine]

# the job traps USR1: writes a marker into its scratch dir, exits 0; anything else is not the trap
TRAP_USR1 = ("-c 'trap \"echo got-usr1 > $_CONDOR_SCRATCH_DIR/marker; exit 0\" USR1; "
             "echo started; while true; do sleep 1; done'")


def _running_container(agent, wait_until) -> str:
    def find():
        jobs = [j for j in agent.call("status")["jobs"] if j["container_id"]]
        return jobs[0]["container"] if jobs else None
    return wait_until(find, 60, "the job's container exists")


def _read(path: str) -> str:
    try:
        with open(path) as stream:
            return stream.read()
    except FileNotFoundError:
        return ""


@pytest.mark.parametrize("attr", ["KillSig", "RemoveKillSig", "HoldKillSig"])
def test_the_jobs_own_kill_signal_reaches_it(attr, agent, make_scratch, start_launcher, real_job_ad,
                                             managed_containers, wait_until):
    scratch = make_scratch("cdtest1", real_job_ad(Arguments=TRAP_USR1, JobMaxVacateTime=30, **{attr: "SIGUSR1"}))
    job = start_launcher(agent, scratch)
    name = _running_container(agent, wait_until)
    wait_until(lambda: "started" in job.stdout(), 30, "the job's trap is set")
    job.process.send_signal(signal.SIGUSR1)          # what the starter sends for this job
    assert job.wait(30) == 0, job.stderr()           # the job trapped it and exited by itself
    assert _read(os.path.join(scratch, "marker")) == "got-usr1\n"
    assert name not in managed_containers()
    assert "stopping %s with signal %d" % (name, signal.SIGUSR1) in agent.log_text()


def test_kill_signal_as_a_number_is_honoured(agent, make_scratch, start_launcher, real_job_ad,
                                            managed_containers, wait_until):
    scratch = make_scratch("cdtest1", real_job_ad(Arguments=TRAP_USR1, KillSig=int(signal.SIGUSR1)))
    job = start_launcher(agent, scratch)
    _running_container(agent, wait_until)
    wait_until(lambda: "started" in job.stdout(), 30, "the job's trap is set")
    job.process.send_signal(signal.SIGUSR1)
    assert job.wait(30) == 0, job.stderr()
    assert _read(os.path.join(scratch, "marker")) == "got-usr1\n"


def test_grace_then_the_starters_hard_kill_ends_the_container(agent, make_scratch, start_launcher, real_job_ad,
                                                              managed_containers, wait_until):
    # the job ignores its kill signal; the starter's SIGKILL of the launcher must end the container
    args = "-c 'trap \"echo ignored >> $_CONDOR_SCRATCH_DIR/marker\" USR1; echo started; while true; do sleep 1; done'"
    scratch = make_scratch("cdtest1", real_job_ad(Arguments=args, KillSig="SIGUSR1", JobMaxVacateTime=60))
    job = start_launcher(agent, scratch)
    name = _running_container(agent, wait_until)
    wait_until(lambda: "started" in job.stdout(), 30, "the job's trap is set")
    job.process.send_signal(signal.SIGUSR1)
    wait_until(lambda: "ignored" in _read(os.path.join(scratch, "marker")), 10, "the job saw its kill signal")
    time.sleep(1.0)
    assert job.process.poll() is None and name in managed_containers()   # still inside its grace
    job.process.kill()                                                  # the starter's hard kill
    job.wait(10)
    wait_until(lambda: name not in managed_containers(), 15, f"{name} removed after the hard kill")


def test_job_dying_of_a_signal_is_reported_as_that_signal(agent, make_scratch, start_launcher, real_job_ad,
                                                          managed_containers, wait_until):
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'kill -SEGV $$'")))
    assert job.wait(60) == -signal.SIGSEGV, job.stderr()   # the starter records ExitBySignal, ExitSignal 11
    line = [l for l in agent.log_text().splitlines() if "op=launch" in l][-1]
    assert "exit=killed_by_signal_11" in line


def test_sigstop_of_the_launcher_pauses_the_container(agent, make_scratch, start_launcher, real_job_ad,
                                                      managed_containers, wait_until):
    args = "-c 'i=0; while true; do i=$((i+1)); echo $i > $_CONDOR_SCRATCH_DIR/counter; sleep 0.2; done'"
    scratch = make_scratch("cdtest1", real_job_ad(Arguments=args))
    job = start_launcher(agent, scratch)
    name = _running_container(agent, wait_until)
    counter = os.path.join(scratch, "counter")
    wait_until(lambda: _read(counter).strip(), 30, "the job counts")
    try:
        job.process.send_signal(signal.SIGSTOP)                      # condor_suspend (OsProc::Suspend)
        wait_until(lambda: managed_containers()[name]["State"]["Paused"], 10, f"{name} paused")
        frozen = _read(counter)
        time.sleep(1.5)
        assert _read(counter) == frozen                               # no progress while suspended
    finally:
        job.process.send_signal(signal.SIGCONT)                       # condor_continue
    wait_until(lambda: not managed_containers()[name]["State"]["Paused"], 10, f"{name} unpaused")
    wait_until(lambda: _read(counter) != frozen, 10, "the job counts again")
    job.process.send_signal(signal.SIGTERM)
    job.wait(30)
    assert name not in managed_containers()
    assert "is stopped or frozen (suspend): pausing" in agent.log_text()


def test_removing_a_suspended_job_continues_it_first(agent, make_scratch, start_launcher, real_job_ad,
                                                     managed_containers, wait_until):
    scratch = make_scratch("cdtest1", real_job_ad(Arguments=TRAP_USR1, KillSig="SIGUSR1"))
    job = start_launcher(agent, scratch)
    name = _running_container(agent, wait_until)
    wait_until(lambda: "started" in job.stdout(), 30, "the job's trap is set")
    job.process.send_signal(signal.SIGSTOP)
    wait_until(lambda: managed_containers()[name]["State"]["Paused"], 10, f"{name} paused")
    job.process.send_signal(signal.SIGCONT)                          # ShutdownGraceful: Continue() first
    job.process.send_signal(signal.SIGUSR1)                          # then the soft kill
    try:
        status = job.wait(30)
    except Exception:
        raise AssertionError(f"the job did not end:\n{agent.log_tail()}\n{job.stderr()}") from None
    assert status == 0, job.stderr()
    assert _read(os.path.join(scratch, "marker")) == "got-usr1\n"
