"""What the agent learns about a job's launcher from the kernel: alive, suspended, which cgroup.

HTCondor controls a job through its job process, which for us is the launcher:
it suspends it with SIGSTOP (or, when the starter manages cgroups, by freezing
the job's freezer cgroup) and resumes it with SIGCONT (or a thaw), and its hard
kill is SIGKILL.  None of these can be caught, so the launcher cannot relay them;
the agent, which serves the launcher's connection, watches instead:

  connection closed (the launcher died)  -> kill the container now
  launcher stopped (T) or its cgroup frozen -> pause the container
  launcher running again                    -> unpause it

The launcher's pid comes from SO_PEERCRED on its connection; psutil reads its
state.  host/cgroups.py's `job_cgroup_parent` reads the launcher's cgroup so that the
container can be created beneath it (see docs/USAGE-ACCOUNTING.md).
"""
from __future__ import annotations

import logging
import select
import socket
import threading
import time
from typing import Callable

import psutil

from ..host import cgroups

log = logging.getLogger("condor_docker.jobwatch")

POLL_SECONDS = 0.5
ENVIRON_LIMIT = 4 << 20   # the kernel caps an exec's environment well below this


def ancestor_environment(pid: int, proc_root: str = "/proc") -> tuple[tuple[str, str], ...]:
    """The `_CONDOR_ANCESTOR_*` variables the starter gave the launcher, from the kernel's copy.

    HTCondor's procd adopts into a job's process family every process whose
    environment carries the family's ancestor marks (its environment tracker), so
    a container whose processes carry them is measured (RemoteUserCpu,
    MemoryUsage), suspended (SIGSTOP to every member) and hard-killed by HTCondor
    exactly like a vanilla job's children.  They are read from
    /proc/<pid>/environ (what the starter exec'ed the launcher with), not from
    the environment the launcher sends.
    """
    try:
        with open(f"{proc_root}/{pid}/environ", "rb") as stream:
            raw = stream.read(ENVIRON_LIMIT)
    except OSError:
        return ()
    found = []
    for item in raw.split(b"\0"):
        name, sep, value = item.decode(errors="replace").partition("=")
        if sep and name.startswith("_CONDOR_ANCESTOR_") and name[len("_CONDOR_ANCESTOR_"):].isdigit():
            found.append((name, value))
    return tuple(found)


def is_suspended(process: psutil.Process) -> bool:
    """Stopped by a signal (SIGSTOP/SIGTSTP), or frozen with its cgroup."""
    try:
        status = process.status()
    except psutil.Error:
        return False
    if status in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
        return True
    return cgroups.frozen(process.pid)


class LauncherWatch:
    """Watches one launcher: its connection (gone -> `on_gone`) and its state (suspend/continue).

    `on_gone` is called once; `on_suspend`/`on_continue` on each change of state.
    """

    def __init__(self, sock: socket.socket, on_gone: Callable[[], None], *, pid: int | None = None,
                 on_suspend: Callable[[], None] | None = None,
                 on_continue: Callable[[], None] | None = None) -> None:
        self.sock = sock
        self.on_gone = on_gone
        self.on_suspend = on_suspend
        self.on_continue = on_continue
        self.gone = False
        self.suspended = False
        self._process = _process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="launcher-watch")

    def start(self) -> "LauncherWatch":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLRDHUP)
        while not self._stop.is_set():
            if poller.poll(POLL_SECONDS * 1000) and self._closed():
                if not self._stop.is_set():
                    self.gone = True
                    self.on_gone()
                return
            self._check_state()

    def _closed(self) -> bool:
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            return True
        if data:  # a launcher sends nothing after its request; ignore stray bytes
            time.sleep(POLL_SECONDS)
            return False
        return True

    def _check_state(self) -> None:
        if self._process is None or self._stop.is_set():
            return
        suspended = is_suspended(self._process)
        if suspended == self.suspended:
            return
        self.suspended = suspended
        callback = self.on_suspend if suspended else self.on_continue
        if callback is not None:
            try:
                callback()
            except Exception:  # noqa: BLE001 -- a failed pause must not end the watch of a live job
                log.exception("suspend/continue of launcher pid %s failed", self._process.pid)


def _process(pid: int | None) -> psutil.Process | None:
    if not pid or pid <= 0:
        return None
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
