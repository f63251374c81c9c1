"""Engine health on the real engine, including the engine dying and coming back.

The dockerd test stops the engine: it is the last test of this file and always
brings the engine back (scripts/engine-up.sh), even when it fails.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import tarfile
import time

import pytest

pytestmark = pytest.mark.engine

if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
    pytest.skip("no Docker engine answers (run scripts/engine-up.sh as root)", allow_module_level=True)

import docker  # noqa: E402

from condor_docker.core import settings  # noqa: E402
from condor_docker.engine.client import Engine  # noqa: E402
from condor_docker.engine.health import SELFTEST_LABEL, Health  # noqa: E402

IMAGE = "condor-docker-test/busybox:local"
ENGINE_UP = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "engine-up.sh")


def _health(**knobs) -> Health:
    knobs.setdefault("CONDOR_DOCKER_TEST_IMAGE", IMAGE)
    values = settings.default_settings(**knobs)
    return Health(Engine(values.engine_url, timeout=10), values)


def _selftest_containers() -> list[dict]:
    client = docker.APIClient(version="auto")
    try:
        return client.containers(all=True, filters={"label": [f"{SELFTEST_LABEL}=true"]})
    finally:
        client.close()


def test_healthy_engine_with_selftest_leaves_nothing():
    health = _health()
    state = health.check()
    assert state.healthy and state.reason is None, state
    assert state.version.startswith("Docker version ") and ", build " in state.version
    assert "none" in state.networks and "host" in state.networks
    assert health._runs == 1 and _selftest_containers() == []
    health.check()
    assert health._runs == 1  # the self-test runs after the first success, not every period


def test_the_builtin_selftest_image_is_loaded_when_missing_and_runs():
    """No CONDOR_DOCKER_TEST_IMAGE: the self-test still runs (DOCKER_PERFORM_TEST is on by
    default), with the built-in image the agent loads itself: no registry, no Docker Hub."""
    from condor_docker.engine import selftest_image
    from condor_docker.engine.selftest_image import BUILTIN_TEST_IMAGE
    client = docker.APIClient(version="auto")
    try:
        try:
            client.remove_image(BUILTIN_TEST_IMAGE)
        except docker.errors.NotFound:
            pass
        health = _health(CONDOR_DOCKER_TEST_IMAGE="")
        state = health.check()
        assert state.healthy and state.reason is None, state
        assert health._runs == 1 and _selftest_containers() == []
        image = client.inspect_image(BUILTIN_TEST_IMAGE)
        assert image["Size"] < 4096 and image["Config"]["Cmd"] == ["true"]
        # the same bytes on every machine: loading again gives the same image id
        again = _health(CONDOR_DOCKER_TEST_IMAGE="")
        again.engine.load_image(selftest_image.image_archive(),
                                BUILTIN_TEST_IMAGE)
        assert client.inspect_image(BUILTIN_TEST_IMAGE)["Id"] == image["Id"]
    finally:
        client.close()


def test_perform_test_false_runs_no_selftest():
    health = _health(CONDOR_DOCKER_TEST_IMAGE="", DOCKER_PERFORM_TEST="false")
    assert health.check().healthy and health._runs == 0


def test_failing_selftest_is_unhealthy_with_a_reason():
    state = _health(CONDOR_DOCKER_TEST_IMAGE="condor-docker-test/no-such-image:1").check()
    assert not state.healthy and state.reason.startswith("self-test failed")
    assert "no-such-image" in state.reason


def test_selftest_start_failure_keeps_the_engine_words():
    """An image without `true`: the engine refuses to start it, and says why."""
    client = docker.APIClient(version="auto")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("only-a-file")
        archive.addfile(info, io.BytesIO(b""))
    reference = "condor-docker-test/health-empty:1"
    client.import_image_from_data(tar.getvalue(), repository=reference.split(":")[0], tag="1")
    try:
        state = _health(CONDOR_DOCKER_TEST_IMAGE=reference).check()
        assert not state.healthy and state.reason.startswith("self-test failed")
        assert "executable file not found" in state.reason or "no such file" in state.reason, state.reason
        assert _selftest_containers() == []
    finally:
        client.remove_image(reference)
        client.close()


def test_selftest_off_runs_no_container():
    health = _health(CONDOR_DOCKER_TEST_IMAGE="condor-docker-test/no-such-image:1", DOCKER_PERFORM_TEST="false")
    assert health.check().healthy and health._runs == 0


def test_missing_socket_names_the_path():
    state = _health(CONDOR_DOCKER_ENGINE_URL="unix:///run/condor_docker-test-no-such.sock").check()
    assert not state.healthy
    assert "/run/condor_docker-test-no-such.sock does not exist" in state.reason


def test_periodic_thread_starts_and_stops():
    health = _health(CONDOR_DOCKER_HEALTH_PERIOD="1")
    health.start()
    try:
        deadline = time.monotonic() + 30
        while not health.current().healthy and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health.current().healthy
    finally:
        health.stop()


def _dockerd_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _engine_up() -> None:
    subprocess.run(["bash", ENGINE_UP], check=True, timeout=120, capture_output=True)


def test_zz_engine_death_and_recovery():
    """Runs last in this file: stops dockerd, then always restarts it."""
    health = _health()
    assert health.check().healthy
    pids = _dockerd_pids()
    assert pids, "no dockerd process to stop"
    try:
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _dockerd_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        down = health.check()
        assert not down.healthy
        assert any(words in down.reason for words in ("does not exist", "nothing listens", "does not answer")), down
        assert health.current() == down
    finally:
        _engine_up()
    up = health.check()  # the same Health and Engine objects: nothing else restarted
    assert up.healthy, up
    assert health._runs == 2  # a self-test after the first success and after the recovery
    assert _selftest_containers() == []
