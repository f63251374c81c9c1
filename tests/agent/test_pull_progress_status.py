"""A slow pull, seen the way people look: the agent log and `condor_docker status` (and the hook's stderr lines).

A real agent (root), the real engine, a loopback registry whose layer trickles in
(tests/engine/stall_registry.py), the PREPARE_JOB hook run as cdtest1 in a real
scratch dir.  The overall pull timeout ends it (requeue, 303) well before the trickle would.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from testpaths import CODE_PATH

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine"))
from stall_registry import TrickleRegistry  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.engine]
PYTHON = "/opt/condor_docker/venv/bin/python"


def status_cli(agent, *extra):
    return subprocess.run([PYTHON, "-m", "condor_docker.cli", "status", "--socket", agent.socket, *extra],
                          env=dict(os.environ, PYTHONPATH=CODE_PATH), capture_output=True, text=True, timeout=60)


def test_slow_pull_shows_progress_in_hook_stderr_agent_log_and_status(agent_factory, make_scratch, real_job_ad,
                                                                       run_as):
    agent = agent_factory(CONDOR_DOCKER_PULL_TIMEOUT="12", CONDOR_DOCKER_PULL_STALL_TIMEOUT="30")
    with TrickleRegistry(layer_bytes=256 * 1024, chunk=1024, interval=0.2) as registry:
        image = registry.reference(f"condor-docker-test/trickle-{uuid.uuid4().hex[:8]}:1")
        job_ad = real_job_ad(DockerImage=image)
        scratch = make_scratch("cdtest1", job_ad)
        with open(os.path.join(scratch, ".job.ad")) as stdin:   # the job ad on stdin, as the starter gives it
            hook = run_as("cdtest1", [PYTHON, "-m", "condor_docker.cli", "prepare-job", "--socket", agent.socket,
                                      "--launcher", "/bin/true"], cwd=scratch,
                          env=dict(os.environ, PYTHONPATH=CODE_PATH), stdin=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(7)
        report = json.loads(status_cli(agent, "--json").stdout)
        table = status_cli(agent).stdout
        out, err = hook.communicate(timeout=60)
    assert [pull["reference"] for pull in report["pulls"]] == [image]
    assert report["pulls"][0]["bytes_total"] > 0 and report["health"]["healthy"] is True
    assert "pulls in flight" in table and image in table
    assert f"condor_docker prepare-job: pulling {image}: " in err and " MB, " in err
    assert "HookStatusCode = 303" in out                       # the overall timeout requeues it
    assert f"pull progress {image}: " in agent.log_text()
    assert status_cli(agent, "--json").returncode == 0
    assert json.loads(status_cli(agent, "--json").stdout)["pulls"] == []
