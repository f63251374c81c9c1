"""What the security tests share (a uniquely named module: `conftest` is ambiguous across test dirs)."""
from __future__ import annotations

import os

from testpaths import CODE_PATH, FIXTURES  # noqa: F401  (re-exported)

PYTHON = "/opt/condor_docker/venv/bin/python"
TEST_ROOT = "/var/lib/condor_docker-test"

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "attacker.py")) as _stream:
    ATTACKER = _stream.read()


def agent_fds(agent) -> int:
    """How many file descriptors the agent process holds now."""
    return len(os.listdir(f"/proc/{agent.process.pid}/fd"))


def agent_threads(agent) -> int:
    return len(os.listdir(f"/proc/{agent.process.pid}/task"))
