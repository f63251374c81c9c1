"""A peer's text cannot forge a line in the agent's log (trust boundary round 2, item 13).

The agent logs one line per request, `op=%s ... job=%s container=%s`, with values
the peer chose.  A newline in the op name, a container name or a slot used to
start a line of the job's own making in a root daemon's log.
"""
from __future__ import annotations

import json
import re

import pytest
from secpeer import RawPeer, case

pytestmark = [pytest.mark.root, pytest.mark.engine]

FORGED = "\nINFO condor_docker.agent: op=launch uid=0 pid=1 job=1.0 container=HTCJob_forged result=ok\n"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ condor_docker[.\w]*: ")


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def test_a_newline_in_peer_text_forges_no_log_line(agent, run_as):
    peer = RawPeer(run_as, "cdtest1", agent)
    attempts = {
        "op": _line({"op": "ping" + FORGED}),
        "op-cr-u2028": _line({"op": "x\rINFO condor_docker.agent: op=launch uid=0\u2028forged\u0085more"}),
        "signal-container": _line({"op": "signal", "container": "HTCJob_1" + FORGED, "signal": 15}),
        "suspend-container": _line({"op": "suspend", "container": FORGED.strip() + FORGED}),
        "reattach-container": _line({"op": "reattach", "container": "c" + FORGED}),
        "cleanup-slot": _line({"op": "cleanup", "cluster": 1, "proc": 0, "slot": "slot1" + FORGED}),
        "long-op": _line({"op": "x" * 5000 + FORGED}),
        "long-container": _line({"op": "resume", "container": ("y" * 900) + FORGED}),
        "lone-surrogate": b'{"op": "\\ud800' + FORGED.replace("\n", "\\n").encode() + b'"}\n',   # unencodable
    }
    try:
        for name, payload in attempts.items():
            answer = peer.send(case(payload, wait=15))
            assert answer["outcome"] == "reply", (name, answer)
            assert "ok" in answer["replies"][-1], (name, answer)   # answered (cleanup of nothing is ok)
    finally:
        peer.close()
    assert agent.call("ping")["ok"]
    with open(agent.log_path, errors="replace") as stream:
        lines = stream.read().splitlines()
    assert lines
    assert "Logging error" not in agent.log_text()   # a line that could not be written is lost, not escaped
    strays = [line for line in lines if not LOG_LINE.match(line) and not line.startswith((" ", "Traceback"))]
    assert not strays, f"lines that are no log record of the agent's: {strays[:5]}"
    escaped = [line for line in lines if "\\x0aINFO condor_docker.agent: op=launch uid=0" in line]
    assert len(escaped) >= 3, escaped   # the forged text is there, escaped inside the agent's own lines
    assert any("\\x0d" in line and "\\u2028" in line and "\\x85" in line for line in lines)
    assert not any(line.split(": ", 1)[-1].startswith("op=launch uid=0") for line in lines)
    assert max(len(line) for line in lines) < 4096
