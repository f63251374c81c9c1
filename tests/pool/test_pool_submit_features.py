"""On a real pool: a slow pull as the admin and the job's owner see it, and the cache ads.

What a real starter does with our PREPARE_JOB hook, learned here: a delayed Chirp
attribute set during PREPARE_JOB reaches the schedd once the job starts (intermediate
values do not: delayed updates travel with the starter's updates); an immediate
set_job_attr is refused at that point; the hook's stderr is not in the StarterLog.
So the live view is the agent log (and `condor_docker status`), and the owner gets
the pull's summary in `ChirpCondorDockerPullProgress`.

Runs with the pool fixture (tests/pool/conftest.py, poolfixture.py); skips where it is absent.
"""
from __future__ import annotations

import os
import sys
import time
import uuid

import pytest

pytest.importorskip("poolfixture", reason="the real-pool fixture (tests/pool/poolfixture.py) is not here")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine"))
from stall_registry import MirrorTrickleRegistry  # noqa: E402


def test_slow_pull_progress_reaches_the_agent_log_and_the_owners_job_ad(pool, pool_job_user):
    with MirrorTrickleRegistry(pad_bytes=512 * 1024, chunk=16 * 1024, interval=0.25) as registry:  # ~20 s
        image = registry.reference(f"condor-docker-test/slow-{uuid.uuid4().hex[:8]}:1")
        job = pool.submit(f"""\
universe = docker
docker_image = {image}
docker_network_type = none
executable = /bin/sh
arguments = "-c 'echo ran'"
transfer_executable = false
output = out.txt
error = err.txt
log = job.log
request_memory = 64
queue
""", user=pool_job_user)
        try:
            ad = pool.wait(job, "done", timeout=180)
        finally:
            _remove_image(image)
    assert ad.get("ExitCode") == 0
    progress_lines = [line for line in pool.agent_log().splitlines() if f"pull progress {image}: " in line]
    assert len(progress_lines) >= 2 and " MB, " in progress_lines[-1]        # every 5 s while it pulled
    assert str(ad.get("ChirpCondorDockerPullProgress", "")).startswith(f"done pulling {image}: ")
    slot = pool.slot_ad()      # the startd cron's last output (every 60 s): one size per cached image
    cached, sizes = list(slot.get("DockerImageCacheList") or []), list(slot.get("DockerImageCacheSizesMb") or [])
    assert len(cached) == len(sizes) and all(isinstance(size, int) and size >= 0 for size in sizes)


def _remove_image(reference: str) -> None:
    """The pulled image is this test's own: leave the shared engine as it was."""
    import docker
    client = docker.APIClient(version="auto")
    try:
        client.remove_image(reference, force=True)
    except docker.errors.NotFound:
        pass
    finally:
        client.close()
