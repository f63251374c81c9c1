"""Real-engine fixtures: the engine, registry and test images (scripts/engine-up.sh)."""
from __future__ import annotations

import os
import pwd
import subprocess
import tempfile

import pytest
from enginetest import LOCAL_IMAGE, REGISTRY_IMAGE, REPO

DOCKER_URL = "unix:///var/run/docker.sock"
# Rootful `podman system service` on a private socket (docs/ENGINES.md); override to test another.
PODMAN_URL = os.environ.get("CONDOR_DOCKER_TEST_PODMAN_URL",
                            "unix:///run/condor_docker-test-podman/podman.sock")


@pytest.fixture(scope="session", params=["docker", "podman"])
def engine(request):
    """Each engine test runs against Docker and against rootful Podman's Docker-compatible API."""
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "engine-up.sh")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the test engine did not come up:\n{result.stderr}")
    from condor_docker.engine.client import Engine
    if request.param == "podman":
        path = PODMAN_URL.removeprefix("unix://")
        if not os.path.exists(path):
            pytest.skip(f"no Podman API socket at {path}: apt-get install podman catatonit, then "
                        f"podman system service --time=0 {PODMAN_URL} (docs/ENGINES.md)")
        engine = Engine(PODMAN_URL)
        podman_images(engine)
    else:
        engine = Engine(DOCKER_URL)
    before = {c["Id"] for c in ours(engine)}
    yield engine
    leftovers = [c for c in ours(engine) if c["Id"] not in before]
    for container in leftovers:
        engine.remove(container["Id"])
    engine.close()
    assert not leftovers, f"containers left behind: {[c['Names'] for c in leftovers]}"


def podman_images(podman) -> None:
    """Podman's own store gets the test images: the registry one pulled, the local-only one
    copied from Docker's store (it was built there and no registry has it)."""
    import docker

    podman.api.pull(REGISTRY_IMAGE)
    source = docker.APIClient(base_url=DOCKER_URL, version="auto")
    try:
        podman.api.load_image(b"".join(source.get_image(LOCAL_IMAGE)))
    finally:
        source.close()


def ours(engine) -> list[dict]:
    """The managed containers these tests make: the default settings' agent id.

    The engine is shared: a pool test's agent (its own agent id) or a run killed before
    its cleanup may leave containers that are not this test's doing, and a leak check
    that counted them would blame whichever engine test ran next.
    """
    from condor_docker.core.labels import own_containers_filter
    from condor_docker.core.settings import default_settings
    return engine.managed_containers(own_containers_filter(default_settings().agent_id))


@pytest.fixture
def job_user():
    """The ordinary user jobs run as in these tests (root never runs jobs)."""
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture
def scratch(job_user):
    """A scratch dir owned by the job user, removed afterwards (the job may write as that uid)."""
    path = tempfile.mkdtemp(prefix="cd-engine-test-")
    os.chown(path, *job_user)
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


@pytest.fixture
def no_leak(engine):
    """Assert that the test left no container of ours behind."""
    before = {c["Id"] for c in ours(engine)}
    yield
    left = [c for c in ours(engine) if c["Id"] not in before]
    assert not left, f"container(s) left behind: {[c['Names'] for c in left]}"


@pytest.fixture
def api(engine):
    """The Docker SDK's low-level client on the engine under test, for tests that set it up
    (the product uses engine/client.py)."""
    import docker

    client = docker.APIClient(base_url=engine.url, version="auto")
    yield client
    client.close()
