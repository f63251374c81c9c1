"""Pool fixtures: one real HTCondor personal pool per session, condor_docker installed in it.

    pool            the running Pool (tests/htcondor_pool/poolfixture.py); skips with the reason
                    when there is no HTCondor, no root or no engine
    pool_job_user   "cdtest1", a real unprivileged user (cdtest2 exists too)

HTCondor is found by scripts/htcondor-up.sh: $CONDOR_DOCKER_TEST_HTCONDOR (an install
dir or a tarball), else ../shared/htcondor beside the checkout, else
/work/shared/htcondor. Every install found (shared/htcondor holds the LTS, 25.0, and
the feature series, 25.13, with its new execute-dir layout) runs the whole tier, one
pool after the other: test ids end in the version, e.g. `[25.13.2]`. After each test no managed container and no scratch dir of
the pool may be left; at session end the pool is stopped and nothing of it (process,
container, state dir) may remain.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from poolfixture import Pool, find_htcondors, series_of  # noqa: E402
from testusers import ensure_users  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_INSTALLS, _WHY_NONE = find_htcondors(REPO)


def pytest_generate_tests(metafunc):
    """One run of every pool test per HTCondor series (the session fixture is parametrized)."""
    if "pool" in metafunc.fixturenames:
        installs = _INSTALLS or [None]
        metafunc.parametrize("htcondor_install", installs, indirect=True, scope="session",
                             ids=[series_of(i) if i else "no-htcondor" for i in installs])


@pytest.fixture(scope="session")
def htcondor_install(request) -> str:
    """The install this run of the tier uses (see pytest_generate_tests)."""
    if request.param is None:
        pytest.skip(f"no HTCondor for the pool tests: {_WHY_NONE}")
    return request.param


@pytest.fixture(scope="session")
def pool(htcondor_install):
    if os.geteuid() != 0:
        pytest.skip("pool tests need root (they start HTCondor's daemons and create users)")
    install = htcondor_install
    engine = subprocess.run(["bash", os.path.join(REPO, "scripts", "engine-up.sh")],
                            capture_output=True, text=True, timeout=900)
    if engine.returncode != 0:
        pytest.skip(f"the test engine did not come up: {engine.stderr[-2000:]}")
    ensure_users()
    the_pool = Pool.create(install, REPO)
    try:
        yield the_pool
    finally:
        before_stop = the_pool.leftovers()
        killed = the_pool.stop()
        after_stop = the_pool.leftovers()
        for container in the_pool.managed_containers():
            container.remove(force=True, v=True)
        root = the_pool.root
        the_pool.destroy()
        problems = []
        if [item for item in before_stop if not item.startswith("process ")]:
            problems.append(f"left while the pool ran: {before_stop}")
        if killed:
            problems.append(f"processes that condor_off -fast -master did not end (killed): {killed}")
        if after_stop:
            problems.append(f"left after the pool stopped: {after_stop}")
        if os.path.exists(root):
            problems.append(f"pool dir {root} could not be removed")
        if problems:
            pytest.fail("the pool left things behind: " + "; ".join(problems))


@pytest.fixture(scope="session")
def pool_job_user(pool) -> str:
    return "cdtest1"


@pytest.fixture(autouse=True)
def nothing_left_after_test(request):
    """After each pool test: no managed container and no scratch dir of this pool (the starter's job)."""
    yield
    if "pool" not in request.fixturenames:
        return
    the_pool = request.getfixturevalue("pool")
    # A job held or requeued by PREPARE_JOB keeps its starter and scratch dir until the startd
    # kills the starter, ~50-60 s after the failure (docs/HTCONDOR-CONTRACT.md, PREPARE_JOB).
    deadline = time.monotonic() + 90
    left = the_pool.leftovers()
    while time.monotonic() < deadline and _things(left):
        time.sleep(0.5)
        left = the_pool.leftovers()
    if _things(left):
        for container in the_pool.managed_containers():
            container.remove(force=True, v=True)
        pytest.fail(f"left behind after the test: {_things(left)}\n{_why_left(the_pool, left)}")


def _things(left: list[str]) -> list[str]:
    """The leftovers that count: containers and scratch dirs (a process may still be on its way out)."""
    return [x for x in left if not x.startswith("process ")]


def _why_left(the_pool, left: list[str]) -> str:
    """What a leftover scratch dir holds and what the starter logs say of it (CI prints only this)."""
    lines = []
    start_log = the_pool.log("StartLog")
    logs = (the_pool.starter_logs() + start_log).splitlines()
    keep = os.environ.get("CONDOR_DOCKER_TEST_KEEP_LOGS")
    if keep:   # a dir to copy the pool's logs into, for a look after the pool is gone
        shutil.copytree(the_pool.log_dir, os.path.join(keep, os.path.basename(the_pool.root)), dirs_exist_ok=True)
    for item in left:
        if not item.startswith("scratch dir "):
            continue
        path = item[len("scratch dir "):]
        name = os.path.basename(path)
        listing = subprocess.run(["ls", "-laR", path], capture_output=True, text=True).stdout
        lines.append(f"--- {path}:\n" + "\n".join(listing.splitlines()[:40]))
        lines += [f"  log: {line}" for line in logs if name in line][-25:]
    lines += [f"  {item}" for item in left if item.startswith("process ")]
    lines += [f"  StartLog: {line}" for line in start_log.splitlines()[-40:]]
    return "\n".join(lines)
