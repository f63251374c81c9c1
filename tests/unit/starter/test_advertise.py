"""`condor_docker advertise`: what the startd cron publishes, with and without an agent.

Every output must be something the startd can merge, so each test parses it
with classad2, as HTCondor's own reader would.
"""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import classad2
import pytest

from condor_docker.starter import advertise
from condor_docker.wire import protocol

REPO = Path(__file__).resolve().parents[3]


class FakeAgent:
    """A unix-socket server speaking protocol.Connection, answering from a dict of op -> reply."""

    def __init__(self, path: Path, replies: dict) -> None:
        self.path = str(path)
        self.replies = replies
        self.requests: list[dict] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self.path)
        self._server.listen(8)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            connection = protocol.Connection(sock)
            try:
                request, _ = connection.receive()
                if request is not None:
                    self.requests.append(request)
                    connection.send(self.replies.get(request.get("op"), {"ok": False, "failure": {
                        "code": 305, "reason": f"unknown op {request.get('op')}"}}))
            finally:
                connection.close()

    def close(self) -> None:
        try:
            self._server.shutdown(socket.SHUT_RDWR)   # wakes the accept() in the thread
        except OSError:
            pass
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def short_tmp():
    """Unix socket paths are limited to ~108 bytes; pytest's tmp_path can be longer."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="cdadv") as tmp:
        yield Path(tmp)


def run_advertise(argv: list[str]) -> dict:
    out = io.StringIO()
    assert advertise.main_advertise(argv, stdout=out) == 0
    text = out.getvalue()
    ad = classad2.parseOne(text)
    return {"text": text, "ad": ad}


def test_no_agent_says_offline_with_a_reason(short_tmp):
    missing = short_tmp / "agent.sock"
    result = run_advertise(["--socket", str(missing), "--agent-start-wait", "0"])
    ad = result["ad"]
    assert ad["HasDocker"] is False
    reason = ad["DockerOfflineReason"]
    assert reason.startswith(f"condor_docker agent not running: {missing}: No such file or directory")
    assert "DAEMON_LIST includes CONDOR_DOCKER_AGENT" in reason


def test_refused_socket_names_the_error(short_tmp):
    path = short_tmp / "dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))   # bound but not listening: connection refused
    try:
        ad = run_advertise(["--socket", str(path), "--agent-start-wait", "0"])["ad"]
    finally:
        dead.close()
    assert ad["HasDocker"] is False
    assert "Connection refused" in ad["DockerOfflineReason"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_permission_denied_names_permissions(short_tmp):
    agent = FakeAgent(short_tmp / "agent.sock", {})
    os.chmod(agent.path, 0o600)
    code = ("import os, sys; os.setgid(65534); os.setuid(65534); "
            "from condor_docker.starter import advertise; sys.exit(advertise.main_advertise(['--socket', sys.argv[1]]))")
    try:
        os.chmod(short_tmp, 0o755)
        proc = subprocess.run([sys.executable, "-c", code, agent.path], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd="/")
    finally:
        agent.close()
    assert proc.returncode == 0, proc.stderr
    ad = classad2.parseOne(proc.stdout)
    assert ad["HasDocker"] is False
    assert "permission denied" in ad["DockerOfflineReason"]
    assert "permissions" in ad["DockerOfflineReason"]


def test_healthy_agent_attrs_are_printed(short_tmp):
    attrs = {"HasDocker": True, "DockerVersion": "Docker version 20.10.24",
             "DockerNetworks": "host,none", "HasDockerVolumeSCRATCH": True,
             "DockerImageCacheList": ["127.0.0.1:5000/condor-docker-test/busybox:1", "a\"b"],
             "DockerCachedImageSizeMb": 5}
    agent = FakeAgent(short_tmp / "agent.sock", {"machine_attrs": {"ok": True, "attrs": attrs}})
    try:
        result = run_advertise(["--socket", agent.path])
    finally:
        agent.close()
    ad = result["ad"]
    assert agent.requests == [{"op": "machine_attrs"}]
    assert ad["HasDocker"] is True
    assert ad["DockerVersion"] == "Docker version 20.10.24"
    assert list(ad["DockerImageCacheList"]) == attrs["DockerImageCacheList"]
    assert ad["DockerCachedImageSizeMb"] == 5
    assert ad["HasDockerVolumeSCRATCH"] is True
    # a recovered agent must clear an old reason from the slot ad
    assert "DockerOfflineReason = undefined" in result["text"]


def test_agent_failure_reply_is_offline(short_tmp):
    agent = FakeAgent(short_tmp / "agent.sock", {"machine_attrs": {
        "ok": False, "failure": {"code": 301, "reason": "the Docker engine does not answer"}}})
    try:
        ad = run_advertise(["--socket", agent.path])["ad"]
    finally:
        agent.close()
    assert ad["HasDocker"] is False
    assert "the Docker engine does not answer" in ad["DockerOfflineReason"]


def test_bad_attribute_names_are_dropped():
    text = advertise.format_attrs({"HasDocker": True, "bad name": 1, "Obj": object()})
    ad = classad2.parseOne(text)
    assert ad["HasDocker"] is True
    assert "Obj" not in ad


def test_hung_agent_is_bounded(short_tmp):
    """An agent that accepts but never answers must not hang the startd's cron job."""
    path = short_tmp / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    try:
        out = io.StringIO()
        assert advertise.main_advertise(["--socket", str(path), "--timeout", "0.5"], stdout=out) == 0
    finally:
        server.close()
    ad = classad2.parseOne(out.getvalue())
    assert ad["HasDocker"] is False
    assert "timed out" in ad["DockerOfflineReason"]


def test_cron_entry_point_runs_without_docker_or_htcondor2(short_tmp):
    """The cron job path: `condor_docker advertise`, and neither heavy module is imported."""
    code = ("import sys; from condor_docker import cli; rc = cli.main(['advertise', '--socket', sys.argv[1], '--agent-start-wait', '0']); "
            "sys.exit(99 if 'docker' in sys.modules or 'htcondor2' in sys.modules else rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(short_tmp / "none.sock")], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert classad2.parseOne(proc.stdout)["HasDocker"] is False


def test_an_agent_that_is_starting_is_waited_for(short_tmp):
    """The startd's first cron run races the agent's start: a socket that appears soon is used."""
    path = short_tmp / "agent.sock"
    attrs = {"HasDocker": True, "DockerVersion": "Docker version 20.10.24"}
    started: list[FakeAgent] = []
    reply = {"machine_attrs": {"ok": True, "attrs": attrs}}
    timer = threading.Timer(1.0, lambda: started.append(FakeAgent(path, reply)))
    timer.start()
    try:
        ad = run_advertise(["--socket", str(path), "--agent-start-wait", "10"])["ad"]
    finally:
        timer.join()
        for agent in started:
            agent.close()
    assert ad["HasDocker"] is True


def test_the_wait_for_a_starting_agent_is_bounded(short_tmp):
    """With no agent at all the cron job still ends (and says why) after the wait."""
    missing = short_tmp / "agent.sock"
    began = time.monotonic()
    ad = run_advertise(["--socket", str(missing), "--agent-start-wait", "0.6"])["ad"]
    assert 0.5 <= time.monotonic() - began < 5
    assert ad["HasDocker"] is False
    assert "No such file or directory" in ad["DockerOfflineReason"]


@pytest.mark.parametrize("has_docker", [True, False])
def test_container_universe_attributes_follow_has_docker(has_docker):
    """condor_submit's universe = container with docker:// requires HasContainer && HasDockerURL."""
    ad = classad2.parseOne(advertise.format_attrs({"HasDocker": has_docker}))
    assert ad.eval("HasDockerURL") is has_docker
    assert ad.eval("HasContainer") is has_docker
    ad["HasSingularity"] = True   # HTCondor's own Singularity keeps HasContainer
    assert ad.eval("HasContainer") is True


@pytest.mark.parametrize("bad", [["--agent-start-wait", "20s"], ["--timeout", "-1"], ["--agent-start-wait", "inf"],
                                 ["--socket"], ["--socket="], ["--timeout"]])
def test_a_bad_option_value_still_publishes_what_the_agent_says(short_tmp, capsys, monkeypatch, bad):
    """A bad value used to exit 64 with nothing on stdout: the startd then unpublishes HasDocker."""
    agent = FakeAgent(short_tmp / "agent.sock", {"machine_attrs": {"ok": True, "attrs": {"HasDocker": True}}})
    monkeypatch.setenv("CONDOR_DOCKER_AGENT_SOCKET", agent.path)   # where a dropped --socket leads
    out = io.StringIO()
    try:
        argv = ["--socket", agent.path, *bad] if bad[0] != "--socket" else bad
        assert advertise.main_advertise(argv, stdout=out) == 64
    finally:
        agent.close()
    assert classad2.parseOne(out.getvalue())["HasDocker"] is True
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"condor_docker advertise: {bad[0].rstrip('=')}")
