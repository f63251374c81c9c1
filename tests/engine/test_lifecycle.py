"""The lifecycle on the real engine: exit status, streams, limits, failures, cleanup."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import classad2
import pytest
from enginetest import LOCAL_IMAGE, REGISTRY_IMAGE

from condor_docker.core import request, spec
from condor_docker.core.failures import Code, Failure, Kind
from condor_docker.core.settings import default_settings
from condor_docker.engine.images import ensure_image
from condor_docker.engine.lifecycle import ContainerRun, JobIO, prepare_scratch

pytestmark = pytest.mark.engine

SETTINGS = default_settings(CONDOR_DOCKER_DEFAULT_NETWORK="none", DOCKER_TRUST_LOCAL_IMAGES="true",
                            CONDOR_DOCKER_PULL_STALL_TIMEOUT="10", CONDOR_DOCKER_PULL_TIMEOUT="60")


def make_spec(scratch, job_user, arguments, image=REGISTRY_IMAGE, memory=64, cpus=1, **attrs):
    ad = classad2.ClassAd({"ClusterId": 42, "ProcId": 7, "Owner": "nobody", "DockerImage": image,
                           "Cmd": "/bin/sh", "Arguments": arguments, "TransferExecutable": False,
                           "RequestMemory": memory, "RequestCpus": cpus, **attrs})
    machine = classad2.ClassAd({"Name": "slot1_3@testhost", "Machine": "testhost", "Cpus": cpus, "Memory": memory})
    job = request.from_ads(ad, machine, uid=job_user[0], gid=job_user[1], scratch_dir=scratch)
    prepare_scratch(scratch, *job_user)
    return job, spec.build_spec(job, SETTINGS)


def run(engine, container, tmp_path, stdin_data=None, on_created=None, control=None):
    out, err = tmp_path / "out", tmp_path / "err"
    stdin_path = tmp_path / "in"
    stdin_path.write_bytes(stdin_data or b"")
    with open(out, "wb") as o, open(err, "wb") as e, open(stdin_path, "rb") as i:
        job = ContainerRun(engine, container, JobIO(o.fileno(), e.fileno(), i.fileno()),
                           kill_grace=2, on_created=on_created)
        if control:
            control(job)
        result = job.run()
    return result, out.read_text(), err.read_text()


@pytest.fixture(autouse=True)
def image_present(engine):
    ensure_image(engine, REGISTRY_IMAGE, policy="missing", trust_local_images=False,
                 pull_timeout=60, stall_timeout=10)


def test_exit_zero_output_and_error_streams(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'echo to-out; echo to-err >&2'")
    result, out, err = run(engine, container, tmp_path)
    assert (result.exit_code, result.signal, result.failure) == (0, None, None)
    assert out == "to-out\n" and err == "to-err\n"


def test_exit_code_three_is_the_jobs_own(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'exit 3'")
    result, _, _ = run(engine, container, tmp_path)
    assert (result.exit_code, result.signal) == (3, None)
    assert result.describe() == "exited with code 3"


def test_stdin_reaches_the_job(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'tr a-z A-Z'", In="in.txt")
    result, out, _ = run(engine, container, tmp_path, stdin_data=b"hello stdin\n")
    assert result.exit_code == 0 and out == "HELLO STDIN\n"


def test_soft_kill_reports_the_signal_and_removes_the_container(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'echo started; sleep 60'")

    def stop_soon(job):
        threading.Timer(1.5, job.stop, args=(signal.SIGTERM, 2)).start()

    started = time.monotonic()
    result, out, _ = run(engine, container, tmp_path, control=stop_soon)
    assert result.signal == signal.SIGTERM and result.exit_code is None
    assert out == "started\n"
    assert time.monotonic() - started < 10


def test_a_job_ignoring_sigterm_is_killed_after_the_grace(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'trap \"\" TERM; echo ready; while true; do sleep 1; done'")
    stopped = {}

    def stop_soon(job):
        def stop():
            stopped["at"] = time.monotonic()
            job.stop(signal.SIGTERM, 2)
        threading.Timer(1.5, stop).start()

    result, _, _ = run(engine, container, tmp_path, control=stop_soon)
    assert result.signal == signal.SIGKILL
    assert time.monotonic() - stopped["at"] >= 2


def test_scratch_dir_is_working_dir_and_writable_as_the_job_uid(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'pwd; id -u; id -g; echo data > out.txt; "
                                                "touch /tmp/t /var/tmp/v && grep -E \" /(var/)?tmp tmpfs \" /proc/mounts'")
    result, out, _ = run(engine, container, tmp_path)
    assert result.exit_code == 0
    lines = out.splitlines()
    assert lines[:3] == [scratch, str(job_user[0]), str(job_user[1])]
    assert os.stat(os.path.join(scratch, "out.txt")).st_uid == job_user[0]
    # private /tmp and /var/tmp are size-limited tmpfs of this container, not dirs of the scratch dir
    assert sorted(line.split()[1] for line in lines[3:]) == ["/tmp", "/var/tmp"]
    assert all("size=1048576k" in line for line in lines[3:]), lines
    assert not os.path.exists(os.path.join(scratch, "tmp", "t"))


def test_cpu_shares_memory_and_security_are_applied(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'grep -E \"^(CapEff|CapBnd|NoNewPrivs)\" /proc/self/status'",
                             memory=96, cpus=2)
    seen = {}

    def on_created(container_id):
        seen.update(engine.api.inspect_container(container_id))

    result, out, _ = run(engine, container, tmp_path, on_created=on_created)
    host = seen["HostConfig"]
    assert result.exit_code == 0
    # What the job's process has, not the engine's report of it: Docker inspects CapDrop as
    # ["ALL"], Podman as each capability of its default set.
    status = dict(line.split(":\t") for line in out.splitlines())
    assert status == {"CapEff": "0000000000000000", "CapBnd": "0000000000000000", "NoNewPrivs": "1"}, out
    assert host["CpuShares"] == 200
    assert host["Memory"] == 96 * 1024 * 1024 and host["MemorySwap"] == 96 * 1024 * 1024
    assert host["PidsLimit"] == 4096 and host["Init"] is True
    assert not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["NetworkMode"] == "none"
    assert seen["Config"]["User"] == f"{job_user[0]}:{job_user[1]}"
    assert seen["Name"] == f"/HTCJob_42_7_slot1_3_u{job_user[0]}"
    assert seen["Config"]["Labels"]["org.condor_docker.managed"] == "true"


def test_memory_hog_is_held_over_memory_limit(engine, scratch, job_user, tmp_path, no_leak):
    _, container = make_spec(scratch, job_user, "-c 'tail /dev/zero'", memory=32)
    result, _, _ = run(engine, container, tmp_path)
    if "podman" in engine.url and not result.oom:
        # Measured: Podman 4.3 on cgroup v1 never sets State.OOMKilled (nor with `podman run`). Without a
        # parent cgroup of its own (the product always gives one; test_usage_engine.py's OOM test holds
        # on both engines) the kill is known only if the stats stream sampled the peak at the limit.
        assert result.signal == signal.SIGKILL and result.failure is None
        return
    assert result.oom and result.signal == signal.SIGKILL
    assert result.failure.code is Code.OVER_MEMORY and result.failure.kind is Kind.HOLD
    assert result.failure.reason == "Docker job has gone over memory limit of 32 Mb"


def test_missing_executable_in_image_is_a_hold(engine, scratch, job_user, tmp_path, no_leak):
    ad_args = "hello"
    job, container = make_spec(scratch, job_user, ad_args)
    container = spec.build_spec(job.__class__(**{**job.__dict__, "cmd": "/no/such/program"}), SETTINGS)
    result, _, _ = run(engine, container, tmp_path)
    assert result.exit_code == (1 if "podman" in engine.url else 127)  # catatonit's, tini's
    assert result.failure.code is Code.EXECUTABLE_NOT_FOUND
    assert "/no/such/program" in result.failure.reason


def test_invalid_reference_is_a_hold_before_the_engine():
    with pytest.raises(Failure) as caught:
        request.from_ads(classad2.ClassAd({"DockerImage": "127.0.0.1:5000/Bad Name", "RequestMemory": 1,
                                           "RequestCpus": 1}), classad2.ClassAd(), uid=1, gid=1, scratch_dir="/x")
    assert caught.value.code is Code.INVALID_IMAGE


def test_missing_image_is_a_hold_with_the_registrys_words(engine):
    with pytest.raises(Failure) as caught:
        ensure_image(engine, "127.0.0.1:5000/condor-docker-test/absent:1", policy="missing",
                     trust_local_images=False, pull_timeout=30, stall_timeout=10)
    assert caught.value.code is Code.IMAGE_NOT_FOUND and caught.value.is_hold
    assert caught.value.reason.startswith("Cannot pull image 127.0.0.1:5000/condor-docker-test/absent:1: ")
    assert "manifest unknown" in caught.value.reason


def test_unreachable_registry_is_a_requeue(engine):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]   # closed once the block ends: nothing listens there
    with pytest.raises(Failure) as caught:
        ensure_image(engine, f"127.0.0.1:{port}/x:1", policy="missing", trust_local_images=False,
                     pull_timeout=30, stall_timeout=10)
    assert caught.value.kind is Kind.REQUEUE and caught.value.code is Code.REGISTRY_UNREACHABLE
    assert "connection refused" in caught.value.reason


def test_local_only_image_needs_trust(engine):
    with pytest.raises(Failure) as caught:
        ensure_image(engine, LOCAL_IMAGE, policy="missing", trust_local_images=False,
                     pull_timeout=30, stall_timeout=10)
    assert caught.value.code is Code.IMAGE_NOT_TRUSTED
    assert ensure_image(engine, LOCAL_IMAGE, policy="missing", trust_local_images=True,
                        pull_timeout=30, stall_timeout=10)["Id"]


def test_engine_down_is_a_requeue(tmp_path):
    from condor_docker.engine.client import Engine
    dead = Engine(f"unix://{tmp_path}/no-engine.sock", timeout=5)
    with pytest.raises(Failure) as caught:
        ensure_image(dead, REGISTRY_IMAGE, policy="missing", trust_local_images=False,
                     pull_timeout=30, stall_timeout=10)
    assert caught.value.code is Code.ENGINE_UNAVAILABLE and caught.value.kind is Kind.REQUEUE


def test_prepare_scratch_refuses_a_planted_symlink(scratch, job_user, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    os.symlink(target, os.path.join(scratch, "tmp"))
    with pytest.raises(Failure) as caught:
        prepare_scratch(scratch, *job_user)
    assert caught.value.code is Code.POLICY_REFUSED
    assert oct(target.stat().st_mode & 0o7777) != "0o1777"     # root did not chmod through the link


def test_exit_result_round_trips_with_a_failure():
    from condor_docker.engine.lifecycle import ExitResult, Usage
    result = ExitResult(None, 9, True, Usage(1.0, 0.5, 64), Failure(Code.OVER_MEMORY, "over"))
    again = ExitResult.from_dict(__import__("json").loads(__import__("json").dumps(result.to_dict())))
    assert again.signal == 9 and again.oom and again.usage.peak_memory_mb == 64
    assert again.failure.code is Code.OVER_MEMORY


def test_an_image_for_another_cpu_is_held_unless_the_admin_skips_the_check(engine):
    """HTCondor holds such a job too; without the check it dies at exec with 'exec format error'."""
    import platform

    from condor_docker.engine import images, selftest_image
    other = "aarch64" if platform.machine() == "x86_64" else "x86_64"
    reference = f"condor-docker-test/other-arch-{os.getpid()}:1"
    engine.load_image(selftest_image.image_archive(other, tag=reference), reference)
    try:
        with pytest.raises(Failure) as caught:
            ensure_image(engine, reference, policy="missing", trust_local_images=True, pull_timeout=10,
                         stall_timeout=10)
        assert caught.value.code is Code.WRONG_ARCHITECTURE and caught.value.kind is Kind.HOLD
        assert "DOCKER_SKIP_IMAGE_ARCH_CHECK" in caught.value.reason
        skipping = images.ImageRules.of(default_settings(DOCKER_SKIP_IMAGE_ARCH_CHECK="true"))
        assert ensure_image(engine, reference, policy="missing", trust_local_images=True, pull_timeout=10,
                            stall_timeout=10, rules=skipping)["Architecture"] != images.ENGINE_ARCHITECTURES[
                                platform.machine()]
        # an image built for this machine passes
        ensure_image(engine, REGISTRY_IMAGE, policy="missing", trust_local_images=False, pull_timeout=60,
                     stall_timeout=10)
    finally:
        engine.remove_image(reference)


def test_log_driver_none_is_the_default_and_the_admin_can_keep_the_engines(engine, scratch, job_user, no_leak):
    import dataclasses
    _, container = make_spec(scratch, job_user, "-c 'true'")
    # Podman's info has no LoggingDriver; its containers' default is json-file (k8s-file inside).
    for none, expected in ((True, "none"), (False, engine.info().get("LoggingDriver") or "json-file")):
        created = engine.create(dataclasses.replace(container, log_driver_none=none))
        try:
            assert engine.api.inspect_container(created)["HostConfig"]["LogConfig"]["Type"] == expected
        finally:
            engine.remove(created)
