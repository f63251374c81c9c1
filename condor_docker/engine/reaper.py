"""Removing containers whose job is gone (Nomad's `reconcile_dangling.go`, in shape).

HTCondor's docker universe reaps leftovers only when the startd starts; a
starter or agent that dies in between leaves containers (and their memory)
behind until then.  The reaper runs in the agent, every CONDOR_DOCKER_REAP_PERIOD:

- it only touches containers labelled `org.condor_docker.managed=true`; an
  unlabelled (foreign) container is never touched;
- and only those of its own agent instance (`org.condor_docker.agent` =
  CONDOR_DOCKER_AGENT_ID): several execute containers may share one host engine,
  and one agent must never remove a sibling's running jobs;
- a tracked container (the agent runs or recovered it) is kept;
- a container whose launcher (label `org.condor_docker.launcher_pid`) is alive
  is kept: someone still waits for its exit status;
- an untracked stopped container is removed whatever its age;
- an untracked running one is removed only once it is older than
  CONDOR_DOCKER_REAP_GRACE (a job that is being created is not tracked yet);
- the first sweep waits max(period, grace), so that the agent's recovery takes
  its containers back first, and sweeps run only while the engine is healthy.

Dependencies are callables, so tests swap them; decisions are a pure function.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..core.failures import Failure
from ..core.labels import (
    AGENT_LABEL,
    LAUNCHER_PID_LABEL,
    LAUNCHER_START_LABEL,
    MANAGED_LABEL,
    SCRATCH_DIR_LABEL,
    own_containers_filter,
)
from ..core.settings import Settings
from ..host import procs
from .client import Engine

log = logging.getLogger("condor_docker.reaper")

_RUNNING_STATES = ("running", "created", "paused", "restarting")


@dataclass(frozen=True)
class ReapDecision:
    container_id: str
    name: str
    reap: bool
    why: str


_DIGITS = re.compile(r"[0-9]{1,19}")   # ASCII digits only: str.isdigit() takes "²", which int() refuses


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether the process exists (signal 0; EPERM means it exists but is not ours) and, given its
    start time, is still the one that had it: a job's user can fork until a dead launcher's pid
    is its own, and would keep the container alive past the reaper."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or procs.start_ticks(pid) == start


def _name(container: dict) -> str:
    names = container.get("Names") or [""]
    return str(names[0]).lstrip("/")


def _is_tracked(container: dict, tracked: set[str]) -> bool:
    """Tracked by full id, short id or name: callers may know any of the three."""
    cid = str(container.get("Id", ""))
    return bool({cid, cid[:12], _name(container)} & tracked)


def _under(path: str, directories: Iterable[str]) -> bool:
    return any(path.startswith(d.rstrip("/") + "/") for d in directories)


def decide(container: dict, tracked: set[str], now: float, grace: float,
           alive: Callable[..., bool] = pid_alive, agent_id: str | None = None,
           execute_dirs: Iterable[str] = ()) -> ReapDecision:
    """Reap or keep one container from the engine's container list; pure but for `alive`.

    Another agent's container (its agent label, or a scratch dir outside our execute
    dirs) belongs to another execute point or test pool on the same engine and is
    never ours to remove.
    """
    cid, name = str(container.get("Id", "")), _name(container)
    labels = container.get("Labels") or {}
    if labels.get(MANAGED_LABEL) != "true":
        return ReapDecision(cid, name, False, "not ours")
    if agent_id is not None and labels.get(AGENT_LABEL) != agent_id:
        return ReapDecision(cid, name, False, f"another agent's ({labels.get(AGENT_LABEL) or 'no agent label'})")
    scratch = labels.get(SCRATCH_DIR_LABEL)
    execute_dirs = tuple(execute_dirs)
    if scratch and execute_dirs and not _under(scratch, execute_dirs):
        return ReapDecision(cid, name, False, "another execute dir's")
    if _is_tracked(container, tracked):
        return ReapDecision(cid, name, False, "tracked")
    state = str(container.get("State", "")).lower()
    pid_text, start_text = labels.get(LAUNCHER_PID_LABEL, ""), labels.get(LAUNCHER_START_LABEL, "")
    launcher = ((int(pid_text),) + ((int(start_text),) if _DIGITS.fullmatch(start_text) else ())
                if _DIGITS.fullmatch(pid_text) else ())
    if launcher and alive(*launcher):   # (a container made before the start label: its pid alone)
        # its launcher still waits for it (e.g. served by another agent, or being reattached)
        return ReapDecision(cid, name, False, f"untracked but its launcher (pid {pid_text}) is alive")
    if state not in _RUNNING_STATES:
        return ReapDecision(cid, name, True, f"untracked and {state or 'stopped'}")
    age = now - float(container.get("Created") or now)
    if age < grace:
        return ReapDecision(cid, name, False, f"untracked but only {age:.0f} s old")
    return ReapDecision(cid, name, True, f"untracked, {state}, {age:.0f} s old")


def plan(containers: Iterable[dict], tracked: set[str], now: float, grace: float,
         alive: Callable[..., bool] = pid_alive, agent_id: str | None = None,
         execute_dirs: Iterable[str] = ()) -> list[ReapDecision]:
    return [decide(c, tracked, now, grace, alive, agent_id, execute_dirs) for c in containers]


class Reaper:
    """A periodic sweep for dangling managed containers; started once, stopped with the agent."""

    def __init__(self, engine: Engine, settings: Settings, tracked: Callable[[], set[str]],
                 is_healthy: Callable[[], bool]) -> None:
        self.engine = engine
        self.settings = settings
        self.tracked = tracked
        self.is_healthy = is_healthy
        self.clock: Callable[[], float] = time.time
        self.alive: Callable[..., bool] = pid_alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._failing = False

    def sweep(self) -> list[str]:
        """One pass; returns the ids removed.  Engine failures are logged, never raised."""
        if not self.is_healthy():
            log.debug("reaper sweep skipped: engine not healthy")
            return []
        try:
            containers = self.engine.managed_containers(own_containers_filter(self.settings.agent_id))
        except Failure as err:
            self._failed(f"cannot list containers: {err.reason}")
            return []
        tracked = set(self.tracked())  # read after listing: a container created meanwhile is young anyway
        removed: list[str] = []
        ok = True
        for decision in plan(containers, tracked, self.clock(), self.settings.reap_grace, self.alive,
                             self.settings.agent_id, self.settings.execute_dirs):
            if not decision.reap:
                continue
            try:
                self.engine.remove(decision.container_id)
            except Failure as err:
                self._failed(f"cannot remove container {decision.name} ({decision.container_id[:12]}): {err.reason}")
                ok = False
                continue
            log.info("reaped container %s (%s): %s", decision.name, decision.container_id[:12], decision.why)
            removed.append(decision.container_id)
        if ok:
            self._succeeded()
        return removed

    def _failed(self, message: str) -> None:
        """Warn when sweeps start failing; later failures of the same run of failures are debug."""
        if not self._failing:
            log.warning("reaper failing: %s", message)
        else:
            log.debug("reaper still failing: %s", message)
        self._failing = True

    def _succeeded(self) -> None:
        if self._failing:
            log.info("reaper recovered")
        self._failing = False

    def start(self) -> None:
        """Start the periodic thread once; calling it again does nothing."""
        with self._start_lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="condor_docker-reaper", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        delay = max(self.settings.reap_period, self.settings.reap_grace)
        while not self._stop.wait(delay):
            try:
                self.sweep()
            except Exception:  # a bug must not end the reaper for the agent's lifetime
                log.exception("reaper sweep crashed")
            delay = self.settings.reap_period

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.engine_timeout + 5)
