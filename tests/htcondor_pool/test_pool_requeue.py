"""A transient fault on a real pool: back to idle with a remote error naming the reason in the job's log, then held once it repeats.

HTCondor requeues a job whose PREPARE_JOB reports a status of 300 or more, with no limit
and no back-off; condor_docker counts the job's starts and turns the next transient
failure after CONDOR_DOCKER_MAX_REQUEUES into a hold (subcode 19) that keeps the last
reason.  Nothing else tests that loop against a real starter, shadow and schedd.
"""
from __future__ import annotations

import os

import htcondor2
from poolfixture import HELD

# a registry on a loopback port nothing listens on: the engine's pull is refused at once (302)
UNREACHABLE = "127.0.0.1:1/condor-docker-test/nothing:1"

SUBMIT = f"""\
universe = docker
docker_image = {UNREACHABLE}
docker_network_type = none
executable = /bin/true
transfer_executable = false
log = job.log
request_memory = 64
queue
"""


def test_a_transient_failure_goes_back_to_idle_then_is_held_when_it_repeats(pool, pool_job_user):
    pool.write_config("95-requeues.conf", "CONDOR_DOCKER_MAX_REQUEUES = 1\n")
    pool.reconfig()
    job = None
    try:
        job = pool.submit(SUBMIT, user=pool_job_user)
        ad = pool.wait(job, "held", timeout=400)     # two starts, ~30-60 s each on a real pool
        assert ad.get("JobStatus") == HELD
        assert (ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")) == (19, 19), ad.get("HoldReason")
        reason = ad.get("HoldReason", "")
        assert "gave up after 2 attempts (limit 1)" in reason and "127.0.0.1:1" in reason, reason
        assert ad.get("NumShadowStarts") == 2
        events = list(htcondor2.JobEventLog(os.path.join(job.dir, "job.log")).events(stop_after=0))
        types = [event.type for event in events]
        # each attempt: a remote error naming the registry, then evicted (back to idle); then held
        remote, evicted, held = (htcondor2.JobEventType.REMOTE_ERROR, htcondor2.JobEventType.JOB_EVICTED,
                                 htcondor2.JobEventType.JOB_HELD)
        assert [t for t in types if t in (remote, evicted, held)] == [remote, evicted, remote, evicted, held], types
        first = next(e for e in events if e.type == remote)
        assert "127.0.0.1:1" in str(first.get("ErrorMsg", "")), dict(first.items())
    finally:
        if job is not None:
            pool.rm(job)
        pool.remove_config("95-requeues.conf")
        pool.reconfig()
