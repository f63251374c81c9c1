"""One request to the agent: who asks (from the kernel), its connection and fds, what to log."""
from __future__ import annotations

import os
import select
from dataclasses import dataclass, field

from ..wire.protocol import Connection


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
        """An event line of a streamed op; False when the client is gone."""
        try:
            self.connection.send(message)
            return True
        except OSError:
            return False
