"""Driving rawpeer.py (run as a real job user) from a test: one process, one case per call."""
from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time

from sectest import CODE_PATH, PYTHON

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rawpeer.py")) as _stream:
    RAWPEER = _stream.read()


def case(*chunks: bytes, fds: int = 0, shutdown: bool = False, wait: float = 10.0, pause: float = 0.0) -> dict:
    return {"chunks": [base64.b64encode(c).decode() for c in chunks], "fds": fds, "shutdown": shutdown,
            "wait": wait, "pause": pause}


class RawPeer:
    """rawpeer.py as `user`, talking to `agent`; send(case) -> its answer (see rawpeer.py)."""

    def __init__(self, run_as, user: str, agent) -> None:
        self.process = run_as(user, [PYTHON, "-c", RAWPEER, agent.socket],
                              env={"PYTHONPATH": CODE_PATH, "PATH": "/usr/bin:/bin"}, cwd="/",
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, bufsize=1)

    def send(self, one: dict, slack: float = 20.0) -> dict:
        self.process.stdin.write(json.dumps(one) + "\n")
        self.process.stdin.flush()
        limit = time.monotonic() + float(one.get("wait", 10)) + len(one.get("chunks", [])) * float(
            one.get("pause", 0)) + slack
        ready, _, _ = select.select([self.process.stdout], [], [], max(0.0, limit - time.monotonic()))
        if not ready:
            raise AssertionError(f"the raw peer itself did not answer in time: {one!r:.300}")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the raw peer died: {self.process.stderr.read()[-2000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# The engine's HTTP connection pools (two clients) keep up to ~35 unix sockets open once
# containers have run (measured: 19 -> 52 over 12 launches, then flat), so a leak check
# counts files and sockets apart: a job's fds (files) must all come back; sockets may grow
# by the pool's size, not by the number of requests.
POOL_SOCKETS = 40


def agent_fd_kinds(agent) -> dict[str, int]:
    """{"files": n, "sockets": n} the agent process holds now."""
    kinds = {"files": 0, "sockets": 0}
    directory = f"/proc/{agent.process.pid}/fd"
    for name in os.listdir(directory):
        try:
            target = os.readlink(os.path.join(directory, name))
        except OSError:
            continue
        kinds["sockets" if target.startswith("socket:") else "files"] += 1
    return kinds


def fds_settled(agent, before: dict[str, int]) -> bool:
    now = agent_fd_kinds(agent)
    return now["files"] <= before["files"] + 2 and now["sockets"] <= before["sockets"] + POOL_SOCKETS
