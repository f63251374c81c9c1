"""Race-safe opens (openat2 and its fallback), the protocol's fd hygiene and refusals, connection caps."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from condor_docker.agent import server as agent_module
from condor_docker.host import safefs
from condor_docker.wire.protocol import Connection, ProtocolError, decode, encode


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Run each test with openat2 and with the component-by-component O_NOFOLLOW walk."""
    if request.param == "walk":
        monkeypatch.setattr(safefs, "_OPENAT2_MISSING", [True])
    elif safefs._OPENAT2_MISSING[0]:
        pytest.skip("this kernel has no openat2")
    return request.param


def test_a_link_anywhere_in_the_path_is_refused(tmp_path, resolver):
    (tmp_path / "real" / "inner").mkdir(parents=True)
    os.symlink(tmp_path / "real", tmp_path / "link")
    fd = safefs.open_no_symlinks(str(tmp_path / "real" / "inner"))
    os.close(fd)
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "link" / "inner"))
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "link"))
    with pytest.raises(OSError):
        safefs.open_no_symlinks(str(tmp_path / "real" / ".." / "real"))


def test_open_beneath_stays_beneath_and_follows_no_link(tmp_path, resolver):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "file").write_text("x")
    os.symlink("/etc", tmp_path / "d" / "etc")
    parent = safefs.open_no_symlinks(str(tmp_path / "d"))
    try:
        os.close(safefs.open_beneath(parent, "sub"))
        os.close(safefs.open_beneath(parent, "file", directory=False))
        for name in ("etc", "etc/passwd", "../d", "/etc"):
            with pytest.raises(OSError):
                safefs.open_beneath(parent, name)
        with pytest.raises(OSError):
            safefs.open_beneath(parent, "file")          # not a directory
    finally:
        os.close(parent)


def test_a_swapped_directory_is_noticed_by_identity(tmp_path):
    (tmp_path / "dir_1").mkdir()
    fd = safefs.open_no_symlinks(str(tmp_path / "dir_1"))
    identity = safefs.DirIdentity.of_fd(fd)
    assert safefs.same_directory(str(tmp_path / "dir_1"), identity)
    os.rename(tmp_path / "dir_1", tmp_path / "moved")
    (tmp_path / "dir_1").mkdir()
    assert not safefs.same_directory(str(tmp_path / "dir_1"), identity)
    os.rmdir(tmp_path / "dir_1")
    os.symlink(tmp_path / "moved", tmp_path / "dir_1")
    assert not safefs.same_directory(str(tmp_path / "dir_1"), identity)   # same inode, but through a link
    os.close(fd)


@pytest.mark.parametrize("line,why", [
    (b'{"a": 1e400}', "out of range"), (b'{"a": NaN}', "not a JSON number"), (b'{"a": -Infinity}', "not a JSON"),
    (b"[1]", "JSON object"), (b"\xff", "not a JSON"), (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"a": ' + b"9" * 5000 + b"}", "not a JSON"),
])
def test_bad_messages_are_protocol_errors(line, why):
    with pytest.raises(ProtocolError, match=why):
        decode(line)


def test_encode_refuses_non_finite_numbers():
    with pytest.raises(ValueError):
        encode({"a": float("inf")})


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("payload", [b"garbage\n", b"[1]\n", b'{"op": "ping"', b'{"op": "pi'])
def test_fds_of_a_bad_or_cut_message_are_closed(payload):
    left, right = socket.socketpair()
    try:
        before = open_fds()
        null = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
        socket.send_fds(left, [payload], null)
        for fd in null:
            os.close(fd)
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(ProtocolError):
            Connection(right).receive(with_fds=True, deadline=time.monotonic() + 5)
        assert open_fds() == before
    finally:
        left.close()
        right.close()


def test_too_many_fds_are_refused_and_closed():
    left, right = socket.socketpair()
    try:
        before = open_fds()
        many = [os.open(os.devnull, os.O_RDONLY) for _ in range(6)]
        socket.send_fds(left, [b'{"op": "ping"}\n'], many)
        for fd in many:
            os.close(fd)
        with pytest.raises(ProtocolError, match="more than 3"):
            Connection(right).receive(with_fds=True, deadline=time.monotonic() + 5)
        assert open_fds() == before
    finally:
        left.close()
        right.close()


def test_the_deadline_bounds_the_whole_request_not_each_read():
    left, right = socket.socketpair()
    stop = threading.Event()

    def dribble():
        while not stop.is_set():
            try:
                left.send(b" ")
            except OSError:
                return
            time.sleep(0.1)

    sender = threading.Thread(target=dribble)
    sender.start()
    started = time.monotonic()
    try:
        with pytest.raises(ProtocolError, match="not complete in time"):
            Connection(right).receive(with_fds=True, deadline=time.monotonic() + 1.0)
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        left.close()
        right.close()
        sender.join()


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
