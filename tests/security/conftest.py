"""The security suite reuses the agent tier's fixtures (tests/agent/conftest.py: (real agent as root, real users cdtest1/cdtest2).

pytest only reads `pytest_plugins` from the rootdir's conftest, so the
agent tier's conftest is loaded under its own module name and its fixtures are
re-exported here (same names, same behaviour, including the session-end check
that no managed container of this session is left on the engine).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "condor_docker_integration_fixtures", os.path.join(os.path.dirname(_HERE), "agent", "conftest.py"))
_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _fixtures   # dataclasses look their module up while the file runs
_spec.loader.exec_module(_fixtures)

no_leaked_containers = _fixtures.no_leaked_containers
engine_up = _fixtures.engine_up
test_users = _fixtures.test_users
execute_dir = _fixtures.execute_dir
real_job_ad = _fixtures.real_job_ad
make_scratch = _fixtures.make_scratch
run_as = _fixtures.run_as
agent_factory = _fixtures.agent_factory
agent = _fixtures.agent
launcher_env = _fixtures.launcher_env
start_launcher = _fixtures.start_launcher
managed_containers = _fixtures.managed_containers
wait_until = _fixtures.wait_until
fake_chirp = _fixtures.fake_chirp

from sectest import ATTACKER, CODE_PATH, PYTHON  # noqa: E402


@pytest.fixture
def attack(run_as):
    """attack(user, agent, mode, *args, timeout=...) -> the attacker's JSON result, run as that user."""
    def run(user: str, agent, mode: str, *args, timeout: float = 180, cwd: str = "/") -> dict:
        process = run_as(user, [PYTHON, "-c", ATTACKER, mode, agent.socket, *map(str, args)],
                         env={"PYTHONPATH": CODE_PATH, "PATH": "/usr/bin:/bin"}, cwd=cwd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err.decode(errors="replace")[-3000:]
        return json.loads(out.decode().splitlines()[-1])
    return run
