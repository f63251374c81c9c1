"""The agent as a daemon: start-up checks, its socket, the simple ops, Chirp."""
from __future__ import annotations

import io
import os
import stat
import subprocess

import pytest
from testpaths import CODE_PATH

from condor_docker.starter import chirp

pytestmark = [pytest.mark.root, pytest.mark.engine]

PYTHON = "/opt/condor_docker/venv/bin/python"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "condor_docker.cli", "agent", "--log", "-", *args],
                          env=dict(os.environ, PYTHONPATH=CODE_PATH), capture_output=True, text=True, timeout=60)


def test_ping_and_socket_mode(agent):
    reply = agent.call("ping")
    assert reply["ok"] and reply["healthy"] is True and reply["reason"] is None and reply["version"]
    assert stat.S_IMODE(os.stat(agent.socket).st_mode) == 0o666
    directory = os.stat(os.path.dirname(agent.socket))
    assert directory.st_uid == 0 and stat.S_IMODE(directory.st_mode) == 0o755


def test_socket_removed_on_sigterm(agent):
    agent.stop()
    assert not os.path.exists(agent.socket)
    assert "agent stopped listening" in agent.log_text()


def test_machine_attrs(agent_factory, tmp_path):
    agent = agent_factory(DOCKER_VOLUMES="DATA", DOCKER_VOLUME_DIR_DATA=f"{tmp_path}:/data:ro")
    attrs = agent.call("machine_attrs")["attrs"]
    assert attrs["HasDocker"] is True
    assert attrs["DockerVersion"].startswith("Docker version ")
    assert "DockerOfflineReason" not in attrs
    assert attrs["DockerNetworks"] == ""
    assert attrs["HasDockerVolumeDATA"] is True
    assert isinstance(attrs["DockerImageCacheList"], list) and isinstance(attrs["DockerCachedImageSizeMb"], int)


def test_unhealthy_engine_is_advertised_offline(agent_factory):
    agent = agent_factory(wait_healthy=False, CONDOR_DOCKER_ENGINE_URL="unix:///nonexistent/docker.sock")
    attrs = agent.call("machine_attrs")["attrs"]
    assert attrs["HasDocker"] is False and "DockerOfflineReason" in attrs


def test_bad_knob_stops_the_agent_naming_it(tmp_path):
    # in the HTCondor configuration: EX_CONFIG
    result = subprocess.run([PYTHON, "-m", "condor_docker.cli", "agent", "--log", "-", "--socket", str(tmp_path / "s")],
                            env=dict(os.environ, PYTHONPATH=CODE_PATH, _CONDOR_CONDOR_DOCKER_KILL_GRACE="soon"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 78
    assert "CONDOR_DOCKER_KILL_GRACE" in result.stderr
    # on the command line: EX_USAGE, one line
    result = run_agent("--socket", str(tmp_path / "s"), "--set", "CONDOR_DOCKER_KILL_GRACE=soon")
    assert result.returncode == 64
    assert "CONDOR_DOCKER_KILL_GRACE" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unsafe_socket_dir_is_refused(tmp_path):
    unsafe = tmp_path / "run"
    unsafe.mkdir()
    os.chmod(unsafe, 0o777)
    result = run_agent("--socket", str(unsafe / "agent.sock"), "--set", "DOCKER_PERFORM_TEST=false")
    assert result.returncode == 71
    assert "writable by root alone" in result.stderr


def test_unknown_op_is_refused(agent):
    reply = agent.call("format_disk")
    assert reply["ok"] is False and reply["failure"]["code"] == 16


def test_chirp_sets_delayed_attributes(fake_chirp, tmp_path):
    config = fake_chirp.write_config(str(tmp_path), 0, 0)
    assert chirp.set_delayed({"ChirpCondorDockerHoldReason": 'a "quoted" reason with spaces',
                              "ChirpCondorDockerHoldSubCode": 102, "ChirpCondorDockerOOM": True}, config=config)
    assert fake_chirp.attributes == {"ChirpCondorDockerHoldReason": '"a \\"quoted\\" reason with spaces"',
                                     "ChirpCondorDockerHoldSubCode": "102", "ChirpCondorDockerOOM": "true"}


def test_chirp_failure_is_reported_not_raised(fake_chirp, tmp_path):
    config = tmp_path / ".chirp.config"
    config.write_text(f"127.0.0.1 {fake_chirp.port} wrong-cookie\n")
    err = io.StringIO()
    assert chirp.set_delayed({"ChirpX": 1}, config=str(config), stderr=err) is False
    assert "cannot report ChirpX" in err.getvalue()
    err = io.StringIO()
    assert chirp.set_delayed({"ChirpX": 1}, config=str(tmp_path / "missing"), stderr=err) is False
    assert "no Chirp configuration" in err.getvalue()
