"""Many jobs at once on a real pool: a burst completes, and one uncached image is pulled once."""
from __future__ import annotations

import secrets
import time

import docker
import pytest
from poolfixture import REGISTRY_IMAGE, Job, cluster_submit


def burst_submit(image: str, count: int) -> str:
    return cluster_submit(count, "echo job $(Process)", image=image)


def test_a_burst_of_20_jobs_all_complete(pool, pool_job_user):
    started = time.monotonic()
    job = pool.submit(burst_submit(REGISTRY_IMAGE, 20), user=pool_job_user)
    pool.wait(job, "done", timeout=300)
    elapsed = time.monotonic() - started
    for proc, ad in enumerate(pool.ads(job)):
        assert ad.get("ExitCode") == 0
        with open(f"{job.dir}/out.{proc}.txt") as stream:
            assert stream.read() == f"job {proc}\n"
    print(f"20-job burst: {elapsed:.1f} s submit to all done (bench/pool.py compares with HTCondor's own)")


@pytest.fixture
def uncached_image():
    """A fresh tag in the local registry, absent from the engine: the first job must pull it."""
    client = docker.from_env(timeout=120)
    repository = f"127.0.0.1:5000/condor-docker-test/pool-once-{secrets.token_hex(4)}"
    client.images.get(REGISTRY_IMAGE).tag(repository, "1")
    client.images.push(repository, "1")
    client.images.remove(f"{repository}:1")
    try:
        yield f"{repository}:1"
    finally:
        try:
            client.images.remove(f"{repository}:1")
        except docker.errors.NotFound:
            pass
        client.close()


def engine_pulls(reference: str, since: float) -> int:
    client = docker.from_env(timeout=60)
    try:
        events = client.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True,
                               filters={"type": "image", "event": "pull"})
        return sum(1 for event in events if (event.get("Actor") or {}).get("ID") == reference)
    finally:
        client.close()


def test_eight_jobs_on_one_uncached_image_pull_it_once(pool, pool_job_user, uncached_image):
    since = time.time()
    job = pool.submit(burst_submit(uncached_image, 8), user=pool_job_user)
    pool.wait(job, "done", timeout=300)
    assert [ad.get("ExitCode") for ad in pool.ads(job)] == [0] * 8
    assert engine_pulls(uncached_image, since) == 1


def test_docker_send_credentials_is_held_with_the_reason(pool, pool_job_user):
    """HTCondor's starter fetches the owner's credentials from the shadow; no hook can: a hold, never
    a pull with someone else's credentials or a silent anonymous one."""
    import os
    import pwd
    import re
    entry = pwd.getpwnam(pool_job_user)
    job_dir = pool.submit_dir(pool_job_user)               # (`queue 0` submits a job on 25.x)
    docker_dir = os.path.join(job_dir, ".docker")          # condor_submit wants $HOME/.docker/config.json
    os.mkdir(docker_dir)
    with open(os.path.join(docker_dir, "config.json"), "w") as config:
        config.write('{"auths": {}}')
    with open(os.path.join(job_dir, "job.sub"), "w") as submit:
        submit.write(f"""\
universe = docker
docker_image = {REGISTRY_IMAGE}
docker_send_credentials = true
docker_network_type = none
executable = /bin/true
transfer_executable = false
log = job.log
request_memory = 64
queue
""")
    for path in (docker_dir, os.path.join(docker_dir, "config.json"), os.path.join(job_dir, "job.sub")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    result = pool.condor("env", f"HOME={job_dir}", "condor_submit", "job.sub", user=pool_job_user, cwd=job_dir)
    cluster = int(re.search(r"submitted to cluster (\d+)\.", result.stdout).group(1))
    job = Job(cluster=cluster, dir=job_dir, user=pool_job_user, count=1)
    ad = pool.wait(job, "held", timeout=120)
    assert "docker_send_credentials: condor_docker cannot fetch" in ad.get("HoldReason", ""), ad.get("HoldReason")
    assert ad.get("HoldReasonCode") == 19
    pool.rm(job)
