"""agent/context.py: a streamed op's events never block the thread that sends them."""
from __future__ import annotations

import socket
import time

from condor_docker.agent import context
from condor_docker.wire.protocol import Connection


def test_a_client_that_never_reads_stops_getting_events_instead_of_blocking_the_pull(monkeypatch):
    # an independent review: a silent client filled its socket and wedged a shared pull forever
    monkeypatch.setattr(context, "EVENT_SEND_TIMEOUT", 0.2)
    agent_side, client_side = socket.socketpair()
    ctx = context.RequestContext("prepare", 1, 1000, 1000, Connection(agent_side), [])
    event = {"event": "pull", "detail": "x" * 4096}
    started = time.monotonic()
    sent = 0
    while ctx.send_event(event):
        sent += 1
        assert time.monotonic() - started < 10, "send_event blocked"
    assert sent > 0 and ctx.events_off
    again = time.monotonic()
    assert ctx.send_event(event) is False and time.monotonic() - again < 0.05   # no second wait
    assert agent_side.gettimeout() is None   # the final reply is sent as before
    agent_side.close()
    client_side.close()
