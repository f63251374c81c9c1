"""Run one submit file in a pool and record what its user sees, so two pools can be compared.

The two pools (HTCondor's own docker universe and condor_docker) run every case at
once. Polling condor_q once per case would cost more than the jobs on a 2-core
machine, so each pool has one `QueueWatcher` (a thread running `condor_q` once a
second for all clusters) and the event logs are read as files, never through a tool.

`Outcome` is the user's view of a case, with pool-specific paths normalised away:
final state, exit code or signal, hold code (raw; holdcodes.py maps it), stdout and
stderr bytes, the files the job left in its submit dir, the event-log event types.
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import classad2
from poolfixture import Job, Pool

IDLE, RUNNING, REMOVED, COMPLETED, HELD, TRANSFERRING, SUSPENDED = 1, 2, 3, 4, 5, 6, 7
STATE_NAMES = {IDLE: "idle", RUNNING: "running", REMOVED: "removed", COMPLETED: "done", HELD: "held",
               TRANSFERRING: "transferring", SUSPENDED: "suspended"}

# Event types a user acts on (HTCondor's ULogEventNumber); the rest (image size,
# file-transfer phases, job-ad information, ...) are bookkeeping that differs by
# timing, so comparing them would compare the machine's load.
EVENT_NAMES = {0: "submit", 1: "execute", 2: "executable-error", 4: "evicted", 5: "terminated",
               7: "shadow-exception", 9: "aborted", 10: "suspended", 11: "unsuspended", 12: "held",
               13: "released", 16: "post-script", 21: "remote-error"}
_EVENT_LINE = re.compile(rb"^(\d{3}) \(\d+\.\d+\.\d+\) ", re.M)
# the job's scratch dir as the job sees it, in both starter layouts (25.0 dir_N, 25.13 dir_N/scratch)
_SCRATCH = re.compile(rb"/[^\s'\"]*/local/execute/dir_\d+(?:/scratch)?")
SUBMIT_FILES = ("job.sub", "job.log")


class QueueWatcher:
    """One `condor_q` a second for a whole pool; cases wait on its cache instead of polling themselves."""

    def __init__(self, pool: Pool, interval: float = 1.0) -> None:
        self.pool = pool
        self.interval = interval
        self._states: dict[tuple[int, int], int] = {}
        self.started_at = 0.0         # when the condor_q behind the cached states began
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{pool.root}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            result = self.pool.condor("condor_q", "-allusers", "-af", "ClusterId", "ProcId", "JobStatus",
                                      check=False, timeout=60)
            if result.returncode == 0:
                states = {}
                for line in result.stdout.splitlines():
                    parts = line.split()
                    if len(parts) == 3 and all(p.isdigit() for p in parts):
                        states[(int(parts[0]), int(parts[1]))] = int(parts[2])
                with self._lock:
                    self._states, self.started_at = states, started
            self._stop.wait(self.interval)

    def state(self, cluster: int, proc: int = 0, since: float = 0.0) -> int | None | str:
        """JobStatus from the last condor_q, None when the job has left the queue, "unknown"
        while no condor_q has started after `since` (the job's submit)."""
        with self._lock:
            if self.started_at <= since:
                return "unknown"
            return self._states.get((cluster, proc))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Run:
    """One case in one pool while it runs: what the drive step needs and records."""
    pool: Pool
    watcher: QueueWatcher
    job: Job
    submitted_at: float = field(default_factory=time.monotonic)
    notes: dict[str, Any] = field(default_factory=dict)

    def state(self, proc: int = 0) -> int | None | str:
        return self.watcher.state(self.job.cluster, proc, self.submitted_at)

    def wait_state(self, wanted: set[int], timeout: float = 240, proc: int = 0) -> int | None:
        """Wait until the job's state is one of `wanted` (None: it has left the queue)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(proc)
            if state in wanted:
                return state
            time.sleep(0.5)
        raise AssertionError(f"{self.job.cluster}.{proc} not in {wanted} after {timeout} s "
                             f"(now {self.state(proc)}): {self.pool.explain(self.job, str(wanted))}")

    def wait_not(self, state: int, timeout: float = 120) -> None:
        """Wait until a condor_q after now no longer shows `state` (e.g. after condor_release)."""
        since = time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            found = self.watcher.state(self.job.cluster, 0, since)
            if found not in ("unknown", state):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.job.cluster}.0 still {state} after {timeout} s")

    def wait_events(self, count: int, event: int, timeout: float = 240) -> None:
        """Wait until the job's event log holds `count` events of type `event`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if event_types(self.job.dir).count(event) >= count:
                return
            time.sleep(0.5)
        raise AssertionError(f"{count} events {event} not seen in {self.job.dir}/job.log after {timeout} s")

    def wait_file(self, name: str, needle: bytes, timeout: float = 120) -> None:
        """Wait until the job's scratch dir holds `name` containing `needle` (the job got that far)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for scratch in self.pool.scratch_dirs(self.job.cluster):
                try:
                    with open(os.path.join(scratch, name), "rb") as stream:
                        if needle in stream.read():
                            return
                except OSError:
                    continue
            time.sleep(0.5)
        raise AssertionError(f"{name} with {needle!r} never appeared in a scratch dir")

    def tool(self, *argv: str) -> str:
        """An HTCondor tool on this job, as its owner; its stdout."""
        result = self.pool.condor(*argv, str(self.job.cluster), user=self.job.user, check=False, timeout=60)
        return result.stdout


FINAL = {None, COMPLETED, REMOVED, HELD}


def wait_final(run: Run, timeout: float = 300) -> None:
    """The default drive: wait until the job has left the queue or is held (and stays held)."""
    for proc in range(run.job.count):
        run.wait_state({None, HELD}, timeout=timeout, proc=proc)


@dataclass
class Outcome:
    """What a user sees of one case in one pool."""
    state: str
    exit_code: int | None = None
    exit_signal: int | None = None
    hold_code: int | None = None
    hold_subcode: int | None = None
    hold_reason: str = ""
    stdout: bytes = b""
    stderr: bytes = b""
    files: dict[str, bytes] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    ad: Any = None
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (f"{self.state} exit={self.exit_code} signal={self.exit_signal} "
                f"hold={self.hold_code}/{self.hold_subcode} {self.hold_reason!r}\n"
                f"  stdout={self.stdout[:300]!r}\n  stderr={self.stderr[:300]!r}\n"
                f"  files={sorted(self.files)} events={self.events} notes={self.notes}")


def event_types(directory: str, log: str = "job.log") -> list[int]:
    """Every event type in the job's event log, in order."""
    try:
        with open(os.path.join(directory, log), "rb") as stream:
            return [int(m.group(1)) for m in _EVENT_LINE.finditer(stream.read())]
    except OSError:
        return []


def normalise(data: bytes) -> bytes:
    """Output with the pool's own scratch path replaced (the one thing that must differ)."""
    return _SCRATCH.sub(b"<SCRATCH>", data)


def _submit_dir_files(directory: str, skip: tuple[str, ...]) -> dict[str, bytes]:
    """Files and dirs the job left in its submit dir (relative path -> bytes; dirs -> b'<dir>')."""
    found: dict[str, bytes] = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), directory) + "/"] = b"<dir>"
        for name in files:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, directory)
            if relative in SUBMIT_FILES or relative in skip or relative.startswith("job.dag."):
                continue
            with open(path, "rb") as stream:
                found[relative] = normalise(stream.read())
    return found


def collect(run: Run, inputs: tuple[str, ...], out: str = "out.txt", err: str = "err.txt",
            log: str = "job.log") -> Outcome:
    """The user's view of a finished (or held) case; `inputs` are the files the case put there itself."""
    ad = run.pool.ad(run.job)
    state = STATE_NAMES.get(ad.get("JobStatus"), str(ad.get("JobStatus")))

    def read(name: str) -> bytes:
        try:
            with open(os.path.join(run.job.dir, name), "rb") as stream:
                return normalise(stream.read())
        except OSError:
            return b"<missing>"

    files = {k: v for k, v in _submit_dir_files(run.job.dir, (out, err, log)).items() if k not in inputs}
    by_signal = ad.get("ExitBySignal") is True
    return Outcome(
        state=state,
        exit_code=None if by_signal else _int(ad.get("ExitCode")),
        exit_signal=_int(ad.get("ExitSignal")) if by_signal else None,
        hold_code=_int(ad.get("HoldReasonCode")) if state == "held" else None,
        hold_subcode=_int(ad.get("HoldReasonSubCode")) if state == "held" else None,
        hold_reason=str(ad.get("HoldReason", "")) if state == "held" else "",
        stdout=read(out), stderr=read(err), files=files,
        events=[EVENT_NAMES[e] for e in event_types(run.job.dir, log) if e in EVENT_NAMES],
        ad=ad, notes=dict(run.notes))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cleanup(run: Run) -> None:
    """A held or still queued job is removed, so the pool is empty at the end."""
    if run.state() is not None:
        run.pool.condor("condor_rm", str(run.job.cluster), check=False, timeout=60)


DriveFn = Callable[[Run], None]


def classad_of(text: str) -> classad2.ClassAd:
    return classad2.parseOne(text)
