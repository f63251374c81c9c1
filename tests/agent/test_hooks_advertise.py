"""`condor_docker advertise` against the real agent, as the startd cron runs it (as a non-root user)."""
from __future__ import annotations

import subprocess

import classad2
import pytest
from test_hooks_prepare import entry_points, make_starter  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.engine]
REGISTRY_IMAGE = "127.0.0.1:5000/condor-docker-test/busybox:1"


def advertise_as(run_as, user: str, condor_docker: str, socket_path: str, *extra: str) -> classad2.ClassAd:
    # argv[0] is the cron job's name, as the startd runs it
    process = run_as(user, ["CONDOR_DOCKER", "advertise", "--socket", socket_path, *extra], executable=condor_docker,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
                     env={"PATH": "/usr/bin:/bin"})
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return classad2.parseOne(out)


def test_running_agent_advertises_docker_and_the_cached_test_image(agent, make_scratch, real_job_ad,
                                                                   run_as, entry_points,  # noqa: F811
                                                                   make_starter):  # noqa: F811
    condor_docker, _ = entry_points
    # a job through the real prepare path puts the registry image in the agent's cache
    outcome = make_starter(agent).run(make_scratch("cdtest1", real_job_ad(Arguments="-c true")))
    assert outcome.state == "completed" and outcome.exit_code == 0, outcome.describe()
    ad = advertise_as(run_as, "cdtest2", condor_docker, agent.socket)
    assert ad["HasDocker"] is True, ad.printOld()
    assert ad["DockerVersion"].startswith("Docker version"), ad.printOld()
    assert "DockerOfflineReason" not in ad or ad.eval("DockerOfflineReason") is classad2.Value.Undefined
    assert REGISTRY_IMAGE in list(ad["DockerImageCacheList"]), ad.printOld()
    assert isinstance(ad["DockerCachedImageSizeMb"], int)


def test_stopped_agent_advertises_offline_with_a_reason(agent_factory, run_as, entry_points):  # noqa: F811
    condor_docker, _ = entry_points
    agent = agent_factory()
    agent.stop()
    # (advertise waits up to 20 s by default for an agent that is starting; none is here)
    ad = advertise_as(run_as, "cdtest2", condor_docker, agent.socket, "--agent-start-wait", "1")
    assert ad["HasDocker"] is False
    reason = ad["DockerOfflineReason"]
    assert reason.startswith(f"condor_docker agent not running: {agent.socket}: "), reason
    assert "CONDOR_DOCKER_AGENT" in reason
