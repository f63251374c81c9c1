"""The agent's socket loop: connection caps per uid and in total, refusal logging, a thread that cannot start."""
from __future__ import annotations

import socket
import threading

from condor_docker.agent import server as agent_module
from condor_docker.wire.protocol import Connection


def test_connection_limits_per_uid_and_in_total():
    limits = agent_module.ConnectionLimits(total=5, per_uid=3)
    assert [limits.acquire(1001) for _ in range(3)] == [None] * 3
    assert "CONDOR_DOCKER_MAX_CONNECTIONS_PER_UID = 3" in limits.acquire(1001)
    assert limits.acquire(1002) is None and limits.acquire(1002) is None
    assert "CONDOR_DOCKER_MAX_CONNECTIONS = 5" in limits.acquire(1003)
    limits.release(1001)
    assert limits.acquire(1003) is None and limits.held() == 5


def test_refusals_are_logged_once_per_period_with_a_count():
    limits = agent_module.ConnectionLimits(total=5, per_uid=3)
    assert limits.refusals_to_log(1001, now=100.0) == 1
    assert [limits.refusals_to_log(1001, now=100.0 + i) for i in range(1, 5)] == [0, 0, 0, 0]
    assert limits.refusals_to_log(1001, now=111.0) == 5      # the four quiet ones and this one
    assert limits.refusals_to_log(1002, now=111.0) == 1


class _Settings:
    max_connections = 8
    max_connections_per_uid = 8
    request_timeout = 2.0


class _Agent:
    settings = _Settings()

    def __init__(self):
        self.served = []

    def serve_connection(self, sock, creds):
        self.served.append(creds)
        Connection(sock).send({"ok": True})
        sock.close()


def test_a_thread_that_cannot_start_is_logged_and_the_agent_goes_on(monkeypatch, caplog):
    fake = _Agent()
    limits = agent_module.ConnectionLimits(8, 8)
    real_start = threading.Thread.start

    def failing_start(self):
        if self.name == "condor_docker-conn":
            raise RuntimeError("can't start new thread")
        return real_start(self)

    left, right = socket.socketpair()
    monkeypatch.setattr(threading.Thread, "start", failing_start)
    agent_module._admit(fake, limits, right)
    reply, _ = Connection(left).receive()
    assert reply["ok"] is False and reply["failure"]["code"] == 304
    assert "cannot start a thread" in reply["failure"]["reason"]
    assert "result=no-thread" in caplog.text and limits.held() == 0
    monkeypatch.setattr(threading.Thread, "start", real_start)
    left.close()
    left, right = socket.socketpair()
    agent_module._admit(fake, limits, right)
    assert Connection(left).receive()[0] == {"ok": True}
    left.close()


def test_a_request_knows_when_its_peer_has_exited():
    """Trust round 2, item 13: /proc/<pid> read after SO_PEERCRED is the peer's only while it lives."""
    import subprocess

    from condor_docker.agent.context import RequestContext
    from condor_docker.agent.service import _pidfd
    peer = subprocess.Popen(["sleep", "30"])
    ctx = RequestContext("launch", peer.pid, 1000, 1000, None, [], pidfd=_pidfd(peer.pid))  # type: ignore[arg-type]
    try:
        assert ctx.pidfd >= 0 and ctx.peer_still_there()
        peer.kill()
        peer.wait()
        assert not ctx.peer_still_there()
    finally:
        ctx.close()
        assert ctx.pidfd == -1


def test_the_soft_fd_limit_is_raised_to_the_hard_one():
    import subprocess
    import sys

    code = ("import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 2048));"
            "from condor_docker.agent.server import raise_fd_limit;"
            "print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")
    import os

    import condor_docker
    root = os.path.dirname(os.path.dirname(os.path.abspath(condor_docker.__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=root)).stdout
    assert out.strip() == "(256, 2048) (2048, 2048)"


def test_parent_gone_only_when_the_parent_that_started_the_agent_changed():
    import os

    assert not agent_module.parent_gone(os.getppid())
    assert not agent_module.parent_gone(None) and not agent_module.parent_gone(1)
    assert agent_module.parent_gone(os.getppid() + 100000)
