"""The engine's hijacked attach/exec connections, and their multiplexed frames.

The only place outside client.py that touches the Docker SDK's internals:
docker-py's frame parser, so that the agent's exec relay and the container
run read the 8-byte stream headers the same way, and what docker-py hands back
for a hijacked connection (`attach_socket`, `exec_start(socket=True)`).
"""
from __future__ import annotations

import socket
import threading
from typing import Any, Iterator

from docker.utils.socket import frames_iter

STDOUT = 1
STDERR = 2


class EngineStream:
    """One hijacked connection to the engine (an attach or an exec): its socket and HTTP response.

    docker-py returns the response's `SocketIO` and hangs the response on it,
    which makes a reference cycle (SocketIO -> response -> reader -> SocketIO):
    closing the SocketIO does not close the socket, and the socket to dockerd
    stayed open until the garbage collector happened to run, often never in
    an idle agent.  `close` closes the socket itself and the response, at once
    and once; it may be called from any thread, and every later call on the
    stream fails with OSError instead of reaching a reused fd number.
    """

    def __init__(self, raw: Any) -> None:
        self._io = raw
        self._response = getattr(raw, "_response", None)
        if self._response is not None:
            del raw._response        # break the cycle: this object owns the response now
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self._lock = threading.Lock()
        self.closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes a relay blocked on it in another thread
        except OSError:
            pass
        for part in (self._io, self.sock, self._response):
            try:
                if part is not None:
                    part.close()
            except Exception:  # noqa: BLE001 -- closing must go on to the next part whatever one says
                pass
        self._io = self._response = None

    def __enter__(self) -> "EngineStream":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def frames(stream: Any) -> Iterator[tuple[int, bytes]]:
    """(stream number, data) per frame of a non-tty attach or exec stream."""
    yield from frames_iter(stream, tty=False)
