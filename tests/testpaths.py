"""Paths every test directory shares (importable because tests/conftest.py puts this dir on sys.path).

FIXTURES   the real-pool fixtures, vendored in tests/fixtures/real-pool (ads and the
           launcher's environment seen on a real HTCondor 25.0 pool), so a fresh
           clone needs nothing beside it.
HTCONDOR_TARBALLS  HTCondor release tarballs, an optional input (tests that need one
           skip without): shared/htcondor beside the checkout, else /work/shared/htcondor.
CODE_PATH  a PYTHONPATH that processes run as the test users can read: the
           checkout itself when every directory above it is world-searchable,
           otherwise a readable copy of the package (a clone in a 0700 temp
           dir is unreadable to cdtest1).
"""
from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fixtures() -> str:
    return os.path.join(REPO, "tests", "fixtures", "real-pool")


def _htcondor_tarballs() -> list[str]:
    import glob
    for directory in (os.path.join(os.path.dirname(REPO), "shared", "htcondor"), "/work/shared/htcondor"):
        found = sorted(glob.glob(os.path.join(directory, "htcondor-*.tar.xz")))
        if found:
            return found
    return []


def _world_readable(path: str) -> bool:
    while True:
        mode = os.stat(path).st_mode
        if not (mode & stat.S_IXOTH and mode & stat.S_IROTH):
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _code_path() -> str:
    if _world_readable(os.path.join(REPO, "condor_docker")):
        return REPO
    base = "/var/lib/condor_docker-test"
    os.makedirs(base, mode=0o755, exist_ok=True)
    copy = tempfile.mkdtemp(prefix="code-", dir=base)
    os.chmod(copy, 0o755)
    shutil.copytree(os.path.join(REPO, "condor_docker"), os.path.join(copy, "condor_docker"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(copy):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o755)
    atexit.register(shutil.rmtree, copy, True)
    return copy


FIXTURES = _fixtures()
HTCONDOR_TARBALLS = _htcondor_tarballs()
CODE_PATH = _code_path()
