"""The protocol's message checks, fd hygiene and refusals, and its whole-request deadline."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from condor_docker.wire.protocol import Connection, ProtocolError, decode, encode


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


def test_received_fds_are_close_on_exec():
    """A job's fds must not outlive the agent's exec (condor_reconfig restarts it in place, reconfig.py):
    SCM_RIGHTS fds are inheritable unless asked otherwise, so every launcher's stdin/stdout/stderr
    being served at a reconfig stayed open in the new image for good."""
    left, right = socket.socketpair()
    read_end, write_end = os.pipe()
    try:
        socket.send_fds(left, [b'{"op": "ping"}\n'], [read_end, write_end])
        message, fds = Connection(right).receive(with_fds=True, deadline=time.monotonic() + 5)
        assert message == {"op": "ping"} and len(fds) == 2
        assert not any(os.get_inheritable(fd) for fd in fds)
        for fd in fds:
            os.close(fd)
    finally:
        os.close(read_end)
        os.close(write_end)
        left.close()
        right.close()
