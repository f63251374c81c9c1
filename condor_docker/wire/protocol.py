"""The agent's wire protocol: JSON lines over a unix stream socket (stdlib only).

Clients (hooks, launcher, advertise) import this module and nothing heavier, so
they start fast and never touch the Docker SDK.

    request   one JSON object + "\n"; the first request of a connection may carry
              file descriptors (SCM_RIGHTS): the launcher passes its stdin,
              stdout and stderr so the agent writes the container's output
              straight into the job's own output files
    response  {"ok": true, ...}  or  {"ok": false, "failure": {"code": N, "reason": "..."}}
    events    a long request (launch) answers with several lines:
              {"event": "started", ...} ... then a final {"ok": ...} line

The agent learns who is asking from the kernel (SO_PEERCRED), never from a message.
"""
from __future__ import annotations

import array
import errno
import json
import math
import os
import socket
import struct
import time

from .ops import Request
from .socketpath import agent_socket

TYPE_CHECKING = False   # typing is not imported at run time: the JOB_EXIT hook starts through this module
if TYPE_CHECKING:
    from typing import Any, Iterator

MAX_LINE = 1 << 20
MAX_FDS = 3
CONNECT_RETRY = 3.0   # seconds a client retries EAGAIN (listen queue full) / ECONNREFUSED


class ProtocolError(Exception):
    """The peer sent something that is not a protocol message, or went away."""


class AgentUnavailable(Exception):
    """No agent answers on the socket; the message says which socket and why."""


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode(line: bytes) -> dict:
    """One message; anything but a JSON object of finite numbers is a ProtocolError (never a crash)."""
    try:
        message = json.loads(line, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ProtocolError("message nested too deeply") from None
    except ValueError as err:  # also UnicodeDecodeError, too-long integers
        raise ProtocolError(f"not a JSON message: {str(err)[:200]}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    return message


def close_fds(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    fds.clear()


def _recv_fds_cloexec(sock: socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int], int]:
    """socket.recv_fds with MSG_CMSG_CLOEXEC: a peer's fds never outlive the agent's exec (condor_reconfig's
    restart in place, agent/reconfig.py).  socket.recv_fds ignores its flags argument, and SCM_RIGHTS fds
    are inheritable unless the kernel is asked otherwise."""
    fds = array.array("i")
    chunk, ancdata, flags, _addr = sock.recvmsg(bufsize, socket.CMSG_LEN(maxfds * fds.itemsize),
                                                socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return chunk, list(fds), flags


class Connection:
    """One side of a connection: line reading with a buffer, line writing, fd passing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, message: dict, fds: list[int] | None = None) -> None:
        data = encode(message)
        if fds:
            sent = socket.send_fds(self.sock, [data], fds)
            data = data[sent:]
        if data:
            self.sock.sendall(data)

    def receive(self, with_fds: bool = False, deadline: float | None = None) -> tuple[dict | None, list[int]]:
        """The next message (None at a clean end of stream) and any fds that came with it.

        `deadline` (time.monotonic()) bounds the whole message, not each read,
        so a peer sending one byte at a time cannot hold the connection.  The
        fds received are the caller's only when a message is returned: on any
        error they are closed here, so a malformed or cut message leaks none.
        """
        fds: list[int] = []
        try:
            while b"\n" not in self._buffer:
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ProtocolError("the request was not complete in time")
                    self.sock.settimeout(remaining)
                if with_fds:
                    chunk, new_fds, flags = _recv_fds_cloexec(self.sock, 65536, MAX_FDS)
                    fds.extend(new_fds)
                    if flags & socket.MSG_CTRUNC or len(fds) > MAX_FDS:
                        raise ProtocolError(f"more than {MAX_FDS} file descriptors were sent")
                else:
                    chunk = self.sock.recv(65536)
                if not chunk:
                    if self._buffer:
                        raise ProtocolError("connection closed in the middle of a message")
                    close_fds(fds)
                    return None, fds
                self._buffer += chunk
                if len(self._buffer) > MAX_LINE:
                    raise ProtocolError("message too long")
            line, self._buffer = self._buffer.split(b"\n", 1)
            return decode(line), fds
        except socket.timeout:
            close_fds(fds)
            if deadline is None:  # a client's own per-read timeout: its caller words it
                raise
            raise ProtocolError("the request was not complete in time") from None
        except BaseException:
            close_fds(fds)
            raise

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel saw it connect."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


class AgentClient:
    """What the hooks, the launcher and advertise use to talk to the agent."""

    def __init__(self, path: str | None = None, timeout: float | None = 30.0,
                 connect_retry: float = CONNECT_RETRY) -> None:
        self.path = agent_socket(path)
        self.timeout = timeout
        self.connect_retry = connect_retry

    def connect(self) -> Connection:
        """Connect; a full listen queue (EAGAIN) or a restarting agent (ECONNREFUSED) is retried briefly."""
        deadline = time.monotonic() + self.connect_retry
        delay = 0.02
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                return Connection(sock)
            except OSError as err:
                sock.close()
                transient = err.errno in (errno.EAGAIN, errno.ECONNREFUSED)
                if not transient or time.monotonic() + delay > deadline:
                    raise AgentUnavailable(f"the condor_docker agent does not answer on {self.path}: "
                                           f"{err.strerror or err}") from err
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def call(self, request: Request | str, **fields: Any) -> dict:
        """One request (an ops.Request, or an op name and its fields), one response."""
        message = _request_message(request, fields)
        op = message["op"]
        connection = self.connect()
        try:
            connection.send(message)
            reply, _ = connection.receive()
        except (OSError, ProtocolError) as err:
            raise AgentUnavailable(f"the condor_docker agent on {self.path} failed to answer {op}: {err}") from err
        finally:
            connection.close()
        if reply is None:
            raise AgentUnavailable(f"the condor_docker agent on {self.path} closed the connection during {op}")
        return reply

    def stream(self, request: Request | str, fds: list[int] | None = None, **fields: Any) -> Iterator[dict]:
        """A long request: yields every event line and finally the {"ok": ...} line."""
        message = _request_message(request, fields)
        op = message["op"]
        connection = self.connect()
        connection.sock.settimeout(None)
        try:
            connection.send(message, fds=fds)
            while True:
                message, _ = connection.receive()
                if message is None:
                    raise AgentUnavailable(f"the condor_docker agent on {self.path} went away during {op}")
                yield message
                if "ok" in message:
                    return
        except (OSError, ProtocolError) as err:
            raise AgentUnavailable(f"lost the condor_docker agent on {self.path} during {op}: {err}") from err
        finally:
            connection.close()


def _request_message(request: Request | str, fields: dict[str, Any]) -> dict:
    if isinstance(request, Request):
        return request.to_message() | fields
    return {"op": request, **fields}
