"""condor_reconfig (SIGHUP from condor_master): the agent re-reads its knobs and never dies of it."""
from __future__ import annotations

import os
import signal
import threading

import pytest

pytestmark = [pytest.mark.root, pytest.mark.engine]


@pytest.fixture
def condor_config(tmp_path, monkeypatch):
    """A CONDOR_CONFIG of this test's own: what the agent re-reads on SIGHUP (--set knobs still win)."""
    path = tmp_path / "condor_config"
    path.write_text("DOCKER_NETWORKS = host\n")
    monkeypatch.setenv("CONDOR_CONFIG", str(path))
    return path


def _hup_and_wait(agent, wait_until, line: str, count: int) -> None:
    os.kill(agent.process.pid, signal.SIGHUP)
    wait_until(lambda: agent.log_text().count(line) >= count, 30, f"the agent logged {line!r} {count} time(s)")


def test_sighup_without_a_change_keeps_the_agent_and_a_change_restarts_it_in_place(
        agent_factory, condor_config, make_scratch, start_launcher, real_job_ad, wait_until):
    agent = agent_factory()
    pid = agent.process.pid
    assert agent.call("machine_attrs")["attrs"]["DockerNetworks"] == "host"
    job = start_launcher(agent, make_scratch("cdtest1", real_job_ad(Arguments="-c 'sleep 8; exit 6'")))
    wait_until(lambda: agent.call("status").get("jobs"), 30, "the job is running")

    _hup_and_wait(agent, wait_until, "condor_reconfig: no condor_docker knob changed", 1)
    assert agent.process.poll() is None and "hands its socket" not in agent.log_text()

    # a change: same pid, same socket, never refused meanwhile, the running job reattached
    condor_config.write_text("DOCKER_NETWORKS = none\n")
    failures: list[str] = []
    done = threading.Event()

    def hammer() -> None:
        while not done.is_set():
            try:
                agent.call("ping")
            except Exception as err:   # noqa: BLE001 - every failure is the finding
                failures.append(f"{type(err).__name__}: {err}")

    pinger = threading.Thread(target=hammer)
    pinger.start()
    try:
        _hup_and_wait(agent, wait_until, "restarting in place", 1)
        wait_until(lambda: agent.log_text().count("agent listening on") >= 2, 60, "the next image listens")
    finally:
        done.set()
        pinger.join()
    assert agent.process.poll() is None and agent.process.pid == pid
    assert "DOCKER_NETWORKS changed" in agent.log_text()
    assert agent.call("machine_attrs")["attrs"]["DockerNetworks"] == "none"
    assert not failures, failures[:3]
    assert job.wait(90) == 6, job.stderr()
    assert "op=reattach uid=" in agent.log_text()


def test_a_bad_configuration_on_sighup_keeps_the_running_one(agent_factory, condor_config, wait_until):
    agent = agent_factory()
    condor_config.write_text("DOCKER_SHM_SIZE = TARGET.RequestMemory * 2\n")
    _hup_and_wait(agent, wait_until, "the new configuration is not usable, keeping the running one", 1)
    assert "DOCKER_SHM_SIZE" in agent.log_tail(5)
    assert agent.process.poll() is None and agent.call("ping")["healthy"] is True
