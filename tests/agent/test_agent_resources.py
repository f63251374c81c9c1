"""The agent gives back what each job took: after hundreds of jobs, its fds, sockets and threads are idle again.

A real agent runs N jobs through the real launcher as cdtest1, CONCURRENCY at
a time, in the mix that exercised every per-job resource the agent holds:
plain jobs; jobs with an input whose stdin never ends (the stdin relay);
jobs stopped by SIGTERM mid-run (the stop and hard-kill path); jobs whose
stdout is a pipe nobody reads (the output relay stuck on the job's side).
The agent's figures are read from outside, from /proc/<pid> and the kernel's
socket table (condor_docker/agent/resources.py), and compared as counts:

- threads: back to the idle count;
- fds other than sockets to the engine: back to the idle count;
- sockets to the engine: at most the two engine clients' idle keep-alive
  connections (2 x engine.client.IDLE_CONNECTIONS), whatever N is.

Before the fixes, 10 jobs left 35 more sockets to dockerd, and the stdin and
stdout relays of the jobs above kept a thread and an attach socket each.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time

import pytest

from condor_docker.agent.resources import Figures, figures
from condor_docker.engine.client import IDLE_CONNECTIONS

pytestmark = [pytest.mark.root, pytest.mark.engine]

PYTHON = "/opt/condor_docker/venv/bin/python"
ENGINE_SOCKET = "/var/run/docker.sock"
N_JOBS = 200
CONCURRENCY = 10
# kind of job number n: mostly plain ones, every 10th of each other kind
KINDS = ("plain", "endless-stdin", "plain", "sigterm", "plain", "unread-stdout", "plain", "plain", "plain", "plain")
ENGINE_SOCKETS_BOUND = 2 * IDLE_CONNECTIONS


def settled(pid: int, want, timeout: float = 60) -> Figures:
    """The agent's figures once `want(figures)` holds (background checks come and go), else the last."""
    deadline = time.monotonic() + timeout
    while True:
        now = figures(pid, ENGINE_SOCKET)
        if want(now) or time.monotonic() > deadline:
            return now
        time.sleep(0.5)


class Jobs:
    """Launchers of cdtest1 against one agent, each with the stdio its kind calls for."""

    def __init__(self, agent, make_scratch, real_job_ad, run_as, launcher_env) -> None:
        self.agent, self.make_scratch, self.real_job_ad = agent, make_scratch, real_job_ad
        self.run_as, self.launcher_env = run_as, launcher_env
        self.open_pipes: list[int] = []      # held by the test until the end (what the job never sees end)

    def start(self, kind: str) -> tuple[str, subprocess.Popen]:
        arguments = {"plain": "-c 'echo ok'", "endless-stdin": "-c 'echo ok'", "sigterm": "-c 'sleep 60'",
                     "unread-stdout": "-c 'head -c 1048576 /dev/zero; sleep 60'"}[kind]
        attrs = {"Arguments": arguments, "JobMaxVacateTime": 2}
        if kind == "endless-stdin":
            attrs["In"] = "input.txt"
        scratch = self.make_scratch("cdtest1", self.real_job_ad(**attrs))
        stdin = stdout = subprocess.DEVNULL
        if kind == "endless-stdin":
            read_end, write_end = os.pipe()
            self.open_pipes.append(write_end)
            stdin = read_end
        if kind == "unread-stdout":
            read_end, write_end = os.pipe()
            self.open_pipes.append(read_end)
            stdout = write_end
        process = self.run_as("cdtest1", [PYTHON, "-m", "condor_docker.cli", "launch", "--socket", self.agent.socket],
                              cwd=scratch, env=self.launcher_env(scratch), stdin=stdin, stdout=stdout,
                              stderr=subprocess.DEVNULL)
        for fd in (stdin, stdout):
            if fd != subprocess.DEVNULL:
                os.close(fd)    # the launcher has its copy; the test keeps only the other end
        return kind, process

    def close(self) -> None:
        for fd in self.open_pipes:
            os.close(fd)
        self.open_pipes.clear()


def running_containers(agent) -> int:
    return sum(1 for job in agent.call("status")["jobs"] if job["container_id"])


def test_hundreds_of_jobs_leave_the_agent_as_idle_as_before(agent, make_scratch, real_job_ad, run_as,
                                                            launcher_env):
    pid = agent.process.pid
    idle = settled(pid, lambda f: f.threads <= 3)   # main, health, reaper
    jobs = Jobs(agent, make_scratch, real_job_ad, run_as, launcher_env)
    kinds = itertools.cycle(KINDS)
    outcomes: dict[str, list[int]] = {}
    running: list[tuple[str, subprocess.Popen, float]] = []
    started = 0
    try:
        while started < N_JOBS or running:
            while started < N_JOBS and len(running) < CONCURRENCY:
                kind, process = jobs.start(next(kinds))
                running.append((kind, process, time.monotonic()))
                started += 1
            time.sleep(0.1)
            for entry in list(running):
                kind, process, since = entry
                if kind in ("sigterm", "unread-stdout") and process.poll() is None and time.monotonic() - since > 4:
                    process.send_signal(signal.SIGTERM)   # condor_rm / vacate mid-run
                    running[running.index(entry)] = (kind + "-stopped", process, since)
                elif process.poll() is not None:
                    outcomes.setdefault(kind, []).append(process.returncode)
                    running.remove(entry)
        assert sum(len(codes) for codes in outcomes.values()) == N_JOBS
        assert set(outcomes["plain"]) == {0} and set(outcomes["endless-stdin"]) == {0}, outcomes
        assert set(outcomes["sigterm-stopped"]) <= {-signal.SIGTERM, -signal.SIGKILL}, outcomes
        assert running_containers(agent) == 0

        def idle_again(now: Figures) -> bool:
            return (now.threads == idle.threads and now.fds - now.engine_sockets == idle.fds - idle.engine_sockets
                    and now.engine_sockets <= max(idle.engine_sockets, ENGINE_SOCKETS_BOUND))
        # measured while the jobs' endless stdins and unread stdouts are still open: what a relay
        # stuck on them holds would be given back only when the job's side closes them
        after = settled(pid, idle_again)
    finally:
        jobs.close()
    print(f"\nagent idle: {idle.line()}\nafter {N_JOBS} jobs: {after.line()}")
    assert after.threads == idle.threads, (idle, after)
    assert after.fds - after.engine_sockets == idle.fds - idle.engine_sockets, (idle, after)
    assert after.engine_sockets <= max(idle.engine_sockets, ENGINE_SOCKETS_BOUND), (idle, after)
