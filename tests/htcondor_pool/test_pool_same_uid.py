"""Trust round 2, item 10, with a real condor_starter: the job's uid alone does not let a process
act on a container; it must descend from the container's own starter.

Sites map many submitters to one uid, so another job of the same uid, or the user's own
login shell, must not signal, suspend or stop someone else's container.  Here a shell of
the job's very uid on this machine (not under the job's starter) asks the agent directly.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from poolfixture import REGISTRY_IMAGE

pytestmark = pytest.mark.security

SLEEPER = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
docker_network_type = none
executable = /bin/sh
arguments = "-c 'exec sleep 120'"
transfer_executable = false
job_max_vacate_time = 2
log = job.log
request_memory = 64
queue
"""

ASK = """\
import json, sys
from condor_docker.wire.protocol import AgentClient
op, fields = sys.argv[2], json.loads(sys.argv[3])
print(json.dumps(AgentClient(sys.argv[1], timeout=30).call(op, **fields)))
"""


def _as_user(pool, user: str, op: str, **fields) -> dict:
    python = os.path.join(pool.venv, "bin", "python")
    result = subprocess.run(["runuser", "-u", user, "--", python, "-c", ASK, pool.agent_socket, op,
                             json.dumps(fields)], capture_output=True, text=True, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_same_uid_outside_the_jobs_starter_cannot_touch_its_container(pool, pool_job_user):
    job = pool.submit(SLEEPER, user=pool_job_user)
    try:
        pool.wait(job, "running", timeout=120)
        [container] = pool.wait_for(lambda: [c for c in pool.managed_containers()
                                             if c.labels.get("org.condor_docker.cluster") == str(job.cluster)
                                             and c.labels.get("org.condor_docker.starter_pid")], 60,
                                    "the job's container with its proven starter")
        for op, fields in (("signal", {"container": container.name, "signal": 9, "grace": 0}),
                           ("suspend", {"container": container.name}),
                           ("cleanup", {"cluster": job.cluster, "proc": 0})):
            reply = _as_user(pool, pool_job_user, op, **fields)
            assert not reply.get("ok"), (op, reply)
            assert "is not a job of" in str(reply.get("failure")), (op, reply)
        container.reload()
        assert container.status == "running"            # untouched: not killed, not paused, not removed
        assert pool.ad(job).get("JobStatus") == 2
        assert "is not a job of condor_starter" in pool.agent_log()
    finally:
        pool.rm(job)
