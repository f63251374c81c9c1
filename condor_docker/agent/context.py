"""One request to the agent: who asks (from the kernel), its connection and fds, what to log."""
from __future__ import annotations

import contextlib
import os
import select
from dataclasses import dataclass, field

from ..wire.protocol import Connection

EVENT_SEND_TIMEOUT = 5.0   # seconds one progress event may wait for a client to read


@dataclass
class RequestContext:
    """One request: who asks (from the kernel), what came with it, what to log."""
    op: str
    pid: int
    uid: int
    gid: int
    connection: Connection
    fds: list[int]
    job: str = "-"
    container: str = "-"
    extra: dict = field(default_factory=dict)
    pidfd: int = -1          # the peer process itself, opened right after SO_PEERCRED (-1: none)
    events_off: bool = False  # a streamed op's client stopped taking event lines (see send_event)

    def peer_still_there(self) -> bool:
        """Whether the peer has not exited since the request came (so its pid is not reused yet).

        What the agent reads from /proc/<pid> (ancestors, cgroups) is the peer's only
        while the peer lives: call this after such a read, and refuse if False.
        """
        if self.pidfd < 0:
            return True
        poller = select.poll()   # not select(): a busy agent's fds go past FD_SETSIZE (1024)
        poller.register(self.pidfd, select.POLLIN)
        return not poller.poll(0)

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def send_event(self, message: dict) -> bool:
        """An event line of a streamed op; False (and no more events) when the client is gone or not reading.

        Events are sent from a pull's shared progress thread: a client that never reads
        must not block it once the socket's buffer is full (that wedged the pull for every
        job waiting on the image).  So each event gets EVENT_SEND_TIMEOUT; a client that
        cannot take one in that time gets none after it (its final reply still comes).
        """
        if self.events_off:
            return False
        sock = self.connection.sock
        try:
            sock.settimeout(EVENT_SEND_TIMEOUT)
            self.connection.send(message)
            return True
        except OSError:   # socket.timeout too: a part of the line may be out, so nothing more is sent
            self.events_off = True
            return False
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(None)
