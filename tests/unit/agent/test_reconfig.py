"""agent/reconfig.py: what a SIGHUP decides, and which handed-over fds are accepted."""
from __future__ import annotations

import os
import socket

from condor_docker.agent import reconfig
from condor_docker.core.settings import default_settings


def _reconfig(monkeypatch, tmp_path, text: str, version: str = "1.0") -> reconfig.Reconfig:
    config = tmp_path / "condor_config"
    config.write_text(text)
    monkeypatch.setenv("CONDOR_CONFIG", str(config))
    monkeypatch.setattr(reconfig, "installed_version", lambda: version)
    reconfig.reload_htcondor_config()
    running = reconfig.settings_from_command_line([])     # what the agent started with
    return reconfig.Reconfig([], running, version="1.0")


def test_nothing_changed_changed_knob_bad_knob_and_an_upgrade(monkeypatch, tmp_path, caplog):
    caplog.set_level("INFO", logger="condor_docker.agent")
    state = _reconfig(monkeypatch, tmp_path, "DOCKER_NETWORKS = labnet\n")
    assert state.check() is False and "no condor_docker knob changed" in caplog.text
    (tmp_path / "condor_config").write_text("DOCKER_NETWORKS = labnet, other\nDOCKER_SHM_SIZE = 1024\n")
    assert state.check() is True
    assert "DOCKER_NETWORKS, DOCKER_SHM_SIZE changed: restarting in place" in caplog.text
    (tmp_path / "condor_config").write_text("DOCKER_DROP_ALL_CAPABILITIES = maybe\n")
    assert state.check() is False and "keeping the running one: DOCKER_DROP_ALL_CAPABILITIES" in caplog.text
    (tmp_path / "condor_config").write_text("DOCKER_NETWORKS = labnet\n")
    monkeypatch.setattr(reconfig, "installed_version", lambda: "1.1")
    assert state.check() is True and "the installed condor_docker (1.0 -> 1.1) changed" in caplog.text


def test_a_reconfig_the_next_image_could_not_start_with_keeps_the_running_agent(monkeypatch, tmp_path, caplog):
    # both were seen to kill the agent: the knob table took them, the restarted image did not
    state = _reconfig(monkeypatch, tmp_path, "DOCKER_NETWORKS = labnet\n")
    for text, words in (("CONDOR_DOCKER_ENGINE_URL = tcp://x:y\n", "CONDOR_DOCKER_ENGINE_URL = 'tcp://x:y' has no"),
                        ("MAX_CONDOR_DOCKER_LOG = 1 Fortnight\nDOCKER_NETWORKS = other\n",
                         "MAX_CONDOR_DOCKER_LOG = '1 Fortnight' is not a log size or age")):
        (tmp_path / "condor_config").write_text(text)
        assert state.check() is False
        assert f"keeping the running one: {words}" in caplog.text
    (tmp_path / "condor_config").write_text("MAX_CONDOR_DOCKER_LOG = 1 Day\nDOCKER_NETWORKS = other\n")
    assert state.check() is True   # HTCondor's own units are a usable value


def test_changed_knobs_counts_volume_definitions():
    old = default_settings(DOCKER_VOLUMES="D", DOCKER_VOLUME_DIR_D="/a")
    new = default_settings(DOCKER_VOLUMES="D", DOCKER_VOLUME_DIR_D="/b")
    assert reconfig.changed_knobs(old, new) == ["DOCKER_VOLUMES"]
    assert reconfig.changed_knobs(old, old) == []


def test_only_a_listening_socket_on_the_same_path_is_taken_over(tmp_path, monkeypatch):
    path = str(tmp_path / "agent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)     # bound nowhere, not listening
    with open(os.devnull) as not_a_socket:
        for value in (f"{os.dup(not_a_socket.fileno())}:{path}", f"{os.dup(other.fileno())}:{path}",
                      f"{os.dup(listener.fileno())}:{path}.other", "x:y", "99999:" + path):
            monkeypatch.setenv(reconfig.LISTENER_ENV, value)
            assert reconfig.inherited_listener(path) is None, value
            assert reconfig.LISTENER_ENV not in os.environ      # never handed on further
    monkeypatch.setenv(reconfig.LISTENER_ENV, f"{os.dup(listener.fileno())}:{path}")
    taken = reconfig.inherited_listener(path)
    assert taken is not None and taken.getsockname() == path and not taken.get_inheritable()
    for sock in (taken, listener, other):
        sock.close()
