"""On a real pool: a slow pull as the admin and the job's owner see it, and the cache ads.

What a real starter does with our PREPARE_JOB hook, learned here: a delayed Chirp
attribute set during PREPARE_JOB reaches the schedd once the job starts (intermediate
values do not: delayed updates travel with the starter's updates); an immediate
set_job_attr is refused at that point; the hook's stderr is not in the StarterLog.
So the live view is the agent log (and `condor_docker status`), and the owner gets
the pull's summary in `ChirpCondorDockerPullProgress`.

Runs with the pool fixture (tests/htcondor_pool/conftest.py, poolfixture.py); skips where it is absent.
"""
from __future__ import annotations

import os
import sys
import uuid

import pytest

pytest.importorskip("poolfixture", reason="the real-pool fixture (tests/htcondor_pool/poolfixture.py) is not here")
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


POLICY_JOBS = {
    "retry": "arguments = \"-c 'exit 1'\"\nmax_retries = 1\n",
    "hold": "arguments = \"-c 'exit 3'\"\non_exit_hold = ExitCode == 3\non_exit_hold_subcode = 33\n"
            "on_exit_hold_reason = \"three means bad input\"\n",
}
KINDS = ("SUBMIT", "EXECUTE", "JOB_EVICTED", "JOB_TERMINATED", "JOB_HELD", "JOB_ABORTED")


def _events(path: str) -> list[tuple[str, dict]]:
    import htcondor2
    wanted = {getattr(htcondor2.JobEventType, kind) for kind in KINDS}
    return [(event.type.name, dict(event.items())) for event in htcondor2.JobEventLog(path).events(stop_after=0)
            if event.type in wanted]


@pytest.mark.parametrize("name", sorted(POLICY_JOBS))
def test_local_runner_writes_the_events_a_real_pool_writes(pool, pool_job_user, name, tmp_path):
    """The same submit file on the real pool and through `condor_docker run`: same events, same codes."""
    import subprocess
    text = ("universe = docker\ndocker_image = 127.0.0.1:5000/condor-docker-test/busybox:1\n"
            "docker_network_type = none\nexecutable = /bin/sh\ntransfer_executable = false\n"
            "log = job.log\nrequest_memory = 64\n" + POLICY_JOBS[name] + "queue\n")
    job = pool.submit(text, user=pool_job_user)
    pool.wait(job, "held" if name == "hold" else "done", timeout=180)
    if name == "hold":
        pool.rm(job)
    theirs = [e for e in _events(os.path.join(job.dir, "job.log")) if e[0] != "JOB_ABORTED"]
    local = tmp_path / "local"
    local.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(local, 0o777)
    (local / "job.sub").write_text(text)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-m", "condor_docker.cli", "run", "job.sub", "--user", pool_job_user,
                    "--state-dir", str(local / ".state")], cwd=local, env=dict(os.environ, PYTHONPATH=repo),
                   capture_output=True, text=True, timeout=180)
    ours = _events(str(local / "job.log"))
    assert [kind for kind, _ in ours] == [kind for kind, _ in theirs]
    for (kind, mine), (_, real) in zip(ours, theirs):
        for key in ("ReturnValue", "TerminatedAndRequeued", "TerminatedNormally", "HoldReasonCode",
                    "HoldReasonSubCode", "HoldReason"):
            assert mine.get(key) == real.get(key), (kind, key, mine.get(key), real.get(key))


def test_out_of_memory_still_holds_through_the_transform(pool, pool_job_user):
    """The transform keeps the user's hold reason/subcode, and still turns the launcher's mark into a hold."""
    job = pool.submit("universe = docker\ndocker_image = 127.0.0.1:5000/condor-docker-test/busybox:1\n"
                      "docker_network_type = none\nexecutable = /bin/sh\ntransfer_executable = false\n"
                      "arguments = \"-c 'tail /dev/zero'\"\nlog = job.log\nrequest_memory = 64\n"
                      "on_exit_hold_subcode = 7\nqueue\n", user=pool_job_user)
    ad = pool.wait(job, "held", timeout=180)
    pool.rm(job)
    import re
    # the slot's Memory (a partitionable slot rounds 64 up to 128), as HTCondor's own message says
    assert re.fullmatch(r"Docker job has gone over memory limit of \d+ Mb", ad.get("HoldReason", "")), ad.get("HoldReason")
    assert (ad.get("HoldReasonCode"), ad.get("HoldReasonSubCode")) == (3, 102)
