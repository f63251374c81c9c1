"""Fixtures of the conformance tier: two pools side by side, the case images, every case's outcome.

    pools      (native, ours) for one HTCondor install: the same base config
               (tests/htcondor_pool/poolfixture.py) plus CONFORMANCE_CONFIG; native has
               `DOCKER = <docker CLI>`, ours the shipped config.d. Both up for the session.
    images     the case images (CMD only, ENTRYPOINT only, both, ...), built FROM the local
               test image with the Docker SDK, pushed to the local registry, removed at the end
    outcomes   {(pool name, case name): Outcome}: every case of the corpus run in both pools
               at once (jobs spread over many slots), computed once per install

The full corpus runs on the oldest install found (25.0.13, the LTS); other installs
run the cases marked `smoke` (see README.md here). Without root, an engine or
HTCondor the tier skips with the reason.
"""
from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [HERE, os.path.join(REPO, "tests", "htcondor_pool")]

import corpus  # noqa: E402
from poolfixture import TEST_ROOT, Pool, find_htcondors, series_of  # noqa: E402
from runner import run_corpus  # noqa: E402
from testusers import ensure_users  # noqa: E402

_INSTALLS, _WHY_NONE = find_htcondors(REPO) if os.geteuid() == 0 else ([], "not root")

# The same in both pools, on top of poolfixture's base config: many small slots, so
# the whole corpus runs at once on this 2-core machine (the jobs mostly sleep or echo).
CONFORMANCE_CONFIG = """\
NUM_CPUS = 24
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 2
SCHEDD_INTERVAL = 2
"""


def site_config(volumes: str, network: str) -> str:
    """The site knobs both pools read: admin volumes (listed, vetoed by MOUNT_IF, unlisted), an admin network."""
    return f"""\
DOCKER_VOLUMES = CONF, OPT, UNLISTED
DOCKER_VOLUME_DIR_CONF = {volumes}/conf:/mnt/conf:ro
DOCKER_VOLUME_DIR_OPT = {volumes}/opt:/mnt/opt:ro
DOCKER_VOLUME_DIR_OPT_MOUNT_IF = TARGET.Owner == "cdtest1"
DOCKER_VOLUME_DIR_UNLISTED = {volumes}/unlisted:/mnt/unlisted:ro
DOCKER_VOLUME_DIR_UNLISTED_MOUNT_IF = true
DOCKER_MOUNT_VOLUMES = CONF, OPT
DOCKER_NETWORKS = {network}
"""


def full_install() -> str | None:
    """The install that runs the whole corpus (the LTS: the oldest found)."""
    return _INSTALLS[0] if _INSTALLS else None


def pytest_generate_tests(metafunc):
    """Every case once per install found (the install is a session parameter: pools start once)."""
    if "case" not in metafunc.fixturenames:
        return
    installs = _INSTALLS or [None]
    metafunc.parametrize("htcondor_install", installs, indirect=True, scope="session",
                         ids=[series_of(i) if i else "no-htcondor" for i in installs])
    metafunc.parametrize("case", corpus.CASES, ids=[c.name for c in corpus.CASES])


def pytest_collection_modifyitems(config, items):
    """Installs other than the full one run the smoke cases only (README.md here says why)."""
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        install = spec.params.get("htcondor_install") if spec else None
        case = spec.params.get("case") if spec else None
        if case is not None and install not in (None, full_install()) and not case.smoke:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def htcondor_install(request) -> str:
    if request.param is None:
        pytest.skip(f"no HTCondor for the conformance tier: {_WHY_NONE}")
    return request.param


@pytest.fixture(scope="session")
def engine_ready() -> None:
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "engine-up.sh")],
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.skip(f"the test engine did not come up: {result.stderr[-2000:]}")
    ensure_users()


@pytest.fixture(scope="session")
def images(engine_ready):
    """{variant: reference} of the case images; this session's own, removed at the end."""
    import docker

    client = docker.from_env(timeout=120)
    tag = uuid.uuid4().hex[:8]
    built = {}
    try:
        for variant, dockerfile in corpus.IMAGE_VARIANTS.items():
            reference = f"{corpus.REGISTRY}/condor-docker-test/conformance-{variant}:{tag}"
            client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=reference, pull=False, rm=True,
                                forcerm=True)
            built[variant] = reference
            for line in client.images.push(reference, stream=True, decode=True):
                if "error" in line:
                    raise RuntimeError(f"push of {reference} failed: {line['error']}")
        yield {"registry": corpus.REGISTRY_IMAGE, "local": corpus.LOCAL_IMAGE, **built}
    finally:
        for image in client.images.list():
            for reference in image.tags:
                if tag in reference:
                    try:
                        client.images.remove(reference, force=True)
                    except docker.errors.APIError:
                        pass
        client.close()


@pytest.fixture(scope="session")
def site(engine_ready):
    """(config text, tokens): this session's volume dirs and admin network (an internal bridge
    with an explicit subnet, no traffic leaves it), removed at the end."""
    import docker

    tag = uuid.uuid4().hex[:8]
    volumes = tempfile.mkdtemp(prefix="conformance-volumes-", dir=TEST_ROOT)
    os.chmod(volumes, 0o755)
    for name in ("conf", "opt", "unlisted"):
        os.makedirs(os.path.join(volumes, name), 0o755)
        with open(os.path.join(volumes, name, "hello"), "w") as stream:
            stream.write(f"hello from {name}\n")
        os.chmod(os.path.join(volumes, name, "hello"), 0o644)
    client = docker.from_env(timeout=60)
    name = f"cdconf{tag}"
    network = None
    for _ in range(20):
        subnet = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}.0/24"
        try:
            network = client.networks.create(name, driver="bridge", internal=True, labels={"condor-docker-test": tag},
                                              ipam=docker.types.IPAMConfig(pool_configs=[
                                                  docker.types.IPAMPool(subnet=subnet)]))
            break
        except docker.errors.APIError:
            continue
    try:
        if network is None:
            pytest.skip("no free subnet for the admin network")
        yield site_config(volumes, name), {"adminnet": name}
    finally:
        if network is not None:
            network.remove()
        client.close()
        shutil.rmtree(volumes, ignore_errors=True)


def _start(install: str, native: bool, config: str) -> Pool:
    docker_cli = shutil.which("docker") if native else None
    if native:
        if docker_cli is None:
            pytest.skip("no docker CLI for HTCondor's own docker universe")
        # HTCondor's own docker universe runs the CLI as the condor user (its manual: condor
        # in the docker group); ours never gives the condor user the socket.
        subprocess.run(["usermod", "-aG", "docker", "condor"], check=True)
    pool = Pool.create(install, REPO, start=False, native_docker=docker_cli)
    try:
        pool.write_config("80-conformance.conf", CONFORMANCE_CONFIG + config)
        pool.start()
    except BaseException:
        pool.stop()
        pool.destroy()
        raise
    return pool


@pytest.fixture(scope="session")
def pools(htcondor_install, engine_ready, site):
    """(native, ours), started at once; stopped and removed at the end of the session."""
    with ThreadPoolExecutor(2) as executor:
        futures = [executor.submit(_start, htcondor_install, native, site[0]) for native in (True, False)]
        started = []
        for future in futures:
            try:
                started.append(future.result())
            except BaseException as error:   # stop the other one before failing
                for pool in [f.result() for f in futures if f is not future and f.exception() is None]:
                    pool.stop()
                    pool.destroy()
                raise error
    try:
        yield tuple(started)
    finally:
        for pool in started:
            pool.stop()
            for container in pool.managed_containers():
                container.remove(force=True, v=True)
            pool.destroy()


@pytest.fixture(scope="session")
def outcomes(pools, images, site, htcondor_install):
    """Every applicable case in both pools, run at once; {(\"native\"|\"ours\", case name): Outcome}."""
    cases = [c for c in corpus.CASES if htcondor_install == full_install() or c.smoke]
    native, ours = pools
    found = run_corpus({"native": native, "ours": ours}, cases, {**images, **site[1]})
    report = os.environ.get("CONDOR_DOCKER_CONFORMANCE_REPORT")
    if report:   # every outcome side by side, for a person reading a failure
        with open(report, "w") as stream:
            for case in cases:
                for name in ("native", "ours"):
                    stream.write(f"== {case.name} [{name}] {found[(name, case.name)].summary()}\n")
    return found
