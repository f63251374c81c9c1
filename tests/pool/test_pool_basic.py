"""The basic paths on a real pool: a user's condor_submit, our hooks and agent, the real starter."""
from __future__ import annotations

from poolfixture import REGISTRY_IMAGE

HELLO = f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
executable = /bin/sh
arguments = "-c 'echo hello from $(whoami 2>/dev/null || id -u)'"
transfer_executable = false
output = out.txt
error = err.txt
log = job.log
request_memory = 64
queue
"""


def test_docker_is_advertised_within_seconds_of_startd_start(pool):
    """HTCondor's own docker universe advertises at once; we must not leave HasDocker false for a minute."""
    assert pool.has_docker_after is not None
    assert pool.has_docker_after < 15, (
        f"HasDocker became true {pool.has_docker_after:.1f} s after the startd started")
    slot = pool.slot_ad()
    assert slot.get("HasDocker") is True
    assert str(slot.get("DockerVersion", "")).startswith("Docker version")


def test_hello(pool, pool_job_user):
    job = pool.submit(HELLO, user=pool_job_user)
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 0
    with open(f"{job.dir}/out.txt") as stream:
        assert stream.read().startswith("hello from ")
    assert f"job={job.cluster}.0 " in pool.agent_log()
