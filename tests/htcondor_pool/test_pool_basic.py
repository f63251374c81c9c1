"""The basic paths on a real pool: a user's condor_submit, our hooks and agent, the real starter and shadow."""
from __future__ import annotations

import hashlib

from poolfixture import REGISTRY_IMAGE


def docker_submit(body: str, memory: str = "64M", image: str = REGISTRY_IMAGE) -> str:
    """A docker-universe submit file; file transfer on, as between an access point and an execute point
    that share no filesystem (the pool's FILESYSTEM_DOMAIN is shared, so IF_NEEDED would not transfer)."""
    return (f"universe = docker\ndocker_image = {image}\n{body.strip()}\nshould_transfer_files = YES\n"
            f"output = out.txt\nerror = err.txt\nlog = job.log\nrequest_memory = {memory}\nqueue\n")


def read(path: str, mode: str = "r"):
    with open(path, mode) as stream:
        return stream.read()


def test_docker_is_advertised_within_seconds_of_startd_start(pool):
    """HTCondor's own docker universe advertises at once; HasDocker must not stay false for a cron period."""
    assert pool.has_docker_after is not None
    assert pool.has_docker_after < 15, (
        f"HasDocker became true {pool.has_docker_after:.1f} s after the startd started")
    slot = pool.slot_ad()
    assert slot.get("HasDocker") is True
    assert str(slot.get("DockerVersion", "")).startswith("Docker version")


def test_hello(pool, pool_job_user):
    job = pool.submit(docker_submit("""
executable = /bin/sh
arguments = "-c 'echo hello from $(id -u)'"
transfer_executable = false
"""), user=pool_job_user)
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 0
    import pwd
    assert read(f"{job.dir}/out.txt") == f"hello from {pwd.getpwnam(pool_job_user).pw_uid}\n"
    assert f"job={job.cluster}.0 " in pool.agent_log()


def test_the_first_job_after_a_startd_restart_runs(pool, pool_job_user, monkeypatch):
    """The agent outlives the startd: its cached security session is refused by the new one
    (StartLog: "attempt to open invalid session") and, when the collector does not have the
    new dynamic slot yet, the slot query came back empty and the job was held 19/16 "no slot"
    (a race: about one restart in four here). The agent now asks a fresh process before it
    holds; that path is checked against the restarted startd directly, since the race is not."""
    warm = pool.submit(docker_submit("executable = /bin/true\ntransfer_executable = false"), user=pool_job_user)
    pool.wait(warm, "done", timeout=120)   # the agent has now talked to this startd
    pool.restart_startd()
    from condor_docker.agent import slots
    monkeypatch.setenv("CONDOR_CONFIG", pool.config_file)
    assert str(slots.fresh_process_query("slot1")["Name"]).startswith("slot1@")   # the p-slot
    assert slots.fresh_process_query("slot9_9") is None                          # no such slot
    job = pool.submit(docker_submit("""
executable = /bin/sh
arguments = "-c 'echo after restart'"
transfer_executable = false
"""), user=pool_job_user)
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 0 and read(f"{job.dir}/out.txt") == "after restart\n"


SCRIPT = """#!/bin/sh
for arg in "$@"; do echo "[$arg]"; done
echo "cwd=$(pwd)"
echo "to stderr" >&2
exit 7
"""


def test_transferred_script_gets_v2_arguments_and_its_exit_code(pool, pool_job_user):
    job = pool.submit(docker_submit("""
executable = script.sh
arguments = "one 'two words' ""quoted"" 'it''s'"
"""), user=pool_job_user, files={"script.sh": SCRIPT})
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 7 and ad.get("ExitBySignal") is False
    lines = read(f"{job.dir}/out.txt").splitlines()
    assert lines[:4] == ["[one]", "[two words]", '["quoted"]', "[it's]"]
    assert lines[4].startswith(f"cwd={pool.execute_dir}/dir_")
    assert read(f"{job.dir}/err.txt") == "to stderr\n"


def test_backslashes_in_arguments_environment_and_custom_attributes_reach_the_job(pool, pool_job_user):
    """The regression of 19/10 "was not read": a backslash anywhere in the job ad held the job.

    The starter writes .job.ad in the old ClassAd syntax, where a backslash is
    literal; the job must see exactly what it would see under the native docker universe.
    """
    job = pool.submit(docker_submit(r"""
executable = script.sh
arguments = "C:\dir a\\b 'tab\t'"
environment = "WIN=C:\Users\me"
+Note = "trailing\\"
"""), user=pool_job_user, files={"script.sh": "#!/bin/sh\nfor arg in \"$@\"; do echo \"[$arg]\"; done\necho \"[$WIN]\"\n"})
    ad = pool.wait(job, "done", timeout=120)
    assert ad.get("ExitCode") == 0
    assert read(f"{job.dir}/out.txt").splitlines() == [r"[C:\dir]", r"[a\\b]", r"[tab\t]", r"[C:\Users\me]"]


def test_unpullable_image_is_held_with_the_registry_reason(pool, pool_job_user):
    missing = "127.0.0.1:5000/condor-docker-test/no-such-image-pool:1"
    job = pool.submit(docker_submit("executable = /bin/true\ntransfer_executable = false\n", image=missing),
                      user=pool_job_user)
    try:
        ad = pool.wait(job, "held", timeout=120)
        assert ad.get("HoldReasonCode") == 19, pool.explain(job, "held")
        assert ad.get("HoldReasonSubCode") == 12
        reason = ad.get("HoldReason")
        assert "PREPARE_JOB" in reason and missing in reason
        assert "manifest unknown" in reason or "not found" in reason.lower()
    finally:
        pool.rm(job)


def test_out_of_memory_is_held_by_the_access_point_transform(pool, pool_job_user):
    """The launcher's Chirp attributes + config.d/50-condor_docker-access-point.conf -> 3/102."""
    job = pool.submit(docker_submit("""
executable = /bin/sh
arguments = "-c 'echo eating memory; tail /dev/zero'"
transfer_executable = false
"""), user=pool_job_user)
    try:
        ad = pool.wait(job, "held", timeout=180)
        assert ad.get("HoldReasonCode") == 3, pool.explain(job, "held")
        assert ad.get("HoldReasonSubCode") == 102
        # the partitionable slot rounds request_memory up (128 MB here): the limit is the slot's
        assert ad.get("HoldReason") == f"Docker job has gone over memory limit of {ad.get('MemoryProvisioned')} Mb"
        assert ad.get("ChirpCondorDockerOOM") is True
    finally:
        pool.rm(job)


def test_a_released_oom_job_that_then_succeeds_completes(pool, pool_job_user):
    """The launcher's Chirp marks stay in the schedd's ad: a released job that exits 0 must not be
    held again by the access-point transform (the launcher takes its old marks back at start)."""
    job = pool.submit(docker_submit("""
executable = /bin/sh
arguments = "-c 'if grep -qx NumJobStarts.=.0 .job.ad; then tail /dev/zero; fi; echo second run'"
transfer_executable = false
"""), user=pool_job_user)
    try:
        held = pool.wait(job, "held", timeout=180)
        assert held.get("HoldReasonSubCode") == 102, pool.explain(job, "held")
        pool.condor("condor_release", str(job.cluster), user=pool_job_user)
        done = pool.wait(job, "done", timeout=180)
        assert done.get("ExitCode") == 0 and read(f"{job.dir}/out.txt").endswith("second run\n")
    finally:
        pool.rm(job)


def test_100_mb_of_stdout_arrives_intact(pool, pool_job_user):
    size = 100 * 1000 * 1000
    job = pool.submit(docker_submit(f"""
executable = /bin/sh
arguments = "-c 'seq 1 20000000 | head -c {size}'"
transfer_executable = false
"""), user=pool_job_user)
    pool.wait(job, "done", timeout=240)
    expected = hashlib.sha256()
    produced, number = 0, 1
    while produced < size:
        chunk = "".join(f"{i}\n" for i in range(number, number + 100000)).encode()
        number += 100000
        chunk = chunk[:size - produced]
        expected.update(chunk)
        produced += len(chunk)
    import os
    assert os.path.getsize(f"{job.dir}/out.txt") == size
    got = hashlib.sha256()
    with open(f"{job.dir}/out.txt", "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            got.update(block)
    assert got.hexdigest() == expected.hexdigest()


def _agent_processes(pool) -> list:
    return [p for p in pool.processes() if "agent" in (p.info["cmdline"] or ())
            and any("condor_docker" in arg for arg in p.info["cmdline"] or ())]


def test_condor_reconfig_keeps_the_agent_and_applies_a_changed_knob(pool, pool_job_user):
    """condor_master sends SIGHUP on condor_reconfig: the agent must neither die of it (Python's
    default) nor drop the running job; a changed knob is applied by a restart in place."""
    agents = _agent_processes(pool)
    assert len(agents) == 1, agents
    sleeper = pool.submit(docker_submit("""
executable = /bin/sh
arguments = "-c 'sleep 12; echo survived'"
transfer_executable = false
"""), user=pool_job_user)
    pool.wait(sleeper, "running", timeout=120)
    pool.reconfig()
    pool.wait_for(lambda: "condor_reconfig: no condor_docker knob changed" in pool.agent_log(), 30,
                  "the agent logged the reconfig")
    pool.write_config("96-reconfig-test.conf", "CONDOR_DOCKER_MAX_REQUEUES = 4\n")
    try:
        pool.reconfig()
        pool.wait_for(lambda: "CONDOR_DOCKER_MAX_REQUEUES changed: restarting in place" in pool.agent_log(), 30,
                      "the agent restarted in place")
    finally:
        pool.remove_config("96-reconfig-test.conf")
        pool.reconfig()
    assert [p.pid for p in _agent_processes(pool)] == [agents[0].pid]   # the master saw no exit
    ad = pool.wait(sleeper, "done", timeout=120)
    assert ad.get("ExitCode") == 0 and read(f"{sleeper.dir}/out.txt") == "survived\n"
    assert pool.slot_ad().get("HasDocker") is True
