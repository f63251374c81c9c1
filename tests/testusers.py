"""The real unprivileged test users (cdtest1, cdtest2), created idempotently.

Shared by tests/agent and tests/htcondor_pool (importable because tests/conftest.py
puts this directory on sys.path). Needs root.
"""
from __future__ import annotations

import pwd
import subprocess

USERS = ("cdtest1", "cdtest2")


def ensure_users(names: tuple[str, ...] = USERS) -> dict[str, tuple[int, int]]:
    """Users with no login shell and no home: {name: (uid, gid)}."""
    users = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            result = subprocess.run(["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                                     "/usr/sbin/nologin", "--user-group", name], capture_output=True, text=True)
            if result.returncode not in (0, 9):   # 9: created meanwhile by another session
                raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}")
            entry = pwd.getpwnam(name)
        users[name] = (entry.pw_uid, entry.pw_gid)
    return users
