"""The reaper on the real engine: labelled untracked containers go, tracked and foreign ones stay."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.engine

if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
    pytest.skip("no Docker engine answers (run scripts/engine-up.sh as root)", allow_module_level=True)

import docker  # noqa: E402

from condor_docker.core import settings  # noqa: E402
from condor_docker.engine.client import Engine  # noqa: E402
from condor_docker.engine.reaper import Reaper  # noqa: E402

IMAGE = "condor-docker-test/busybox:local"
RUN_LABEL = "org.condor_docker.test_run"


class ScopedEngine(Engine):
    """The real engine, but a sweep sees only this test's containers (labelled or not).

    Other tests may run managed containers at the same time; the reaper under
    test must not reap those.  The listing includes this test's unlabelled
    container, so the reaper's own label check is what keeps it.
    """

    def __init__(self, run: str) -> None:
        super().__init__()
        self.run = run

    def managed_containers(self, extra_filters: dict | None = None) -> list[dict]:
        return self.api.containers(all=True, filters={"label": [f"{RUN_LABEL}={self.run}"]})


@pytest.fixture
def run_id():
    run = uuid.uuid4().hex[:10]
    yield run
    client = docker.APIClient(version="auto")
    for container in client.containers(all=True, filters={"label": [f"{RUN_LABEL}={run}"]}):
        client.remove_container(container["Id"], force=True, v=True)
    client.close()


def _sleeper(api, run: str, name: str, managed: bool, agent: str | None = None) -> str:
    labels = {RUN_LABEL: run}
    if managed:
        labels["org.condor_docker.managed"] = "true"
        labels["org.condor_docker.agent"] = agent or settings.default_settings().agent_id
    created = api.create_container(
        IMAGE, command=["sleep", "300"], name=f"{name}-{run}", labels=labels, network_disabled=True,
        host_config=api.create_host_config(network_mode="none"))
    api.start(created["Id"])
    return created["Id"]


def _exists(api, container_id: str) -> bool:
    try:
        api.inspect_container(container_id)
        return True
    except docker.errors.NotFound:
        return False


def test_untracked_labelled_container_is_reaped_within_grace_plus_period(run_id):
    api = docker.APIClient(version="auto")
    orphan = _sleeper(api, run_id, "orphan", managed=True)
    tracked = _sleeper(api, run_id, "tracked", managed=True)
    foreign = _sleeper(api, run_id, "foreign", managed=False)
    # another execute container's agent on the same engine: never ours to reap
    sibling = _sleeper(api, run_id, "sibling", managed=True, agent="another-execute-node")
    knobs = settings.default_settings(CONDOR_DOCKER_REAP_GRACE="3", CONDOR_DOCKER_REAP_PERIOD="1")
    reaper = Reaper(ScopedEngine(run_id), knobs, tracked=lambda: {tracked}, is_healthy=lambda: True)
    started = time.monotonic()
    reaper.start()
    try:
        while _exists(api, orphan) and time.monotonic() - started < 3 + 1 + 10:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        assert not _exists(api, orphan), "the orphan was not reaped"
        assert 2.5 <= elapsed <= 3 + 1 + 8, elapsed  # not before the grace; grace + one period + a loaded engine
        time.sleep(1.5)  # one more sweep
        assert _exists(api, tracked) and _exists(api, foreign) and _exists(api, sibling)
    finally:
        reaper.stop()
        api.close()


def test_stopped_untracked_container_is_reaped_at_once(run_id):
    api = docker.APIClient(version="auto")
    stopped = _sleeper(api, run_id, "stopped", managed=True)
    api.kill(stopped)
    api.wait(stopped, timeout=30)
    young = _sleeper(api, run_id, "young", managed=True)
    knobs = settings.default_settings(CONDOR_DOCKER_REAP_GRACE="300")
    reaper = Reaper(ScopedEngine(run_id), knobs, tracked=set, is_healthy=lambda: True)
    try:
        assert reaper.sweep() == [stopped]
        assert _exists(api, young)
    finally:
        api.close()
