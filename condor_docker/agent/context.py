"""One request to the agent: who asks (from the kernel), its connection and fds, what to log."""
from __future__ import annotations

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

    def send_event(self, message: dict) -> bool:
        """An event line of a streamed op; False when the client is gone."""
        try:
            self.connection.send(message)
            return True
        except OSError:
            return False
