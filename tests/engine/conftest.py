"""Real-engine fixtures: the engine, registry and test images (scripts/engine-up.sh)."""
from __future__ import annotations

import os
import pwd
import subprocess
import tempfile

import pytest
from enginetest import REPO


@pytest.fixture(scope="session")
def engine():
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "engine-up.sh")],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the test engine did not come up:\n{result.stderr}")
    from condor_docker.engine.client import Engine
    engine = Engine()
    yield engine
    leftovers = engine.managed_containers()
    for container in leftovers:
        engine.remove(container["Id"])
    engine.close()
    assert not leftovers, f"containers left behind: {[c['Names'] for c in leftovers]}"


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
    yield
    left = engine.managed_containers()
    assert not left, f"container(s) left behind: {[c['Names'] for c in left]}"


@pytest.fixture
def api():
    """The Docker SDK's low-level client, for tests that set the engine up (the product uses engine/client.py)."""
    import docker

    client = docker.APIClient(version="auto")
    yield client
    client.close()
