"""One job's container, from create to remove: the lifecycle shared by every path.

    ensure image -> create -> attach -> start -> wait -> inspect -> remove

The local runner calls it in-process; the agent calls it on behalf of a
launcher, and adopts (`ContainerRun.adopt`: attach -> wait -> inspect -> remove)
the containers an earlier agent created when their launchers reconnect.  Once the container exists, every outcome (exit, failure, stop,
crash of this thread) ends with the container force-removed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import select
import signal as signals
import socket
import stat
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

from ..core.failures import Code, Failure
from ..core.labels import AGENT_LABEL, UID_LABEL
from ..core.spec import ContainerSpec
from ..host import safefs
from .client import Engine
from .streams import EngineStream, frames
from .usage import ContainerCgroup, Usage, mb_ceil, network_bytes, tree_size

log = logging.getLogger("condor_docker.lifecycle")

_TINI_EXEC_FAILED = re.compile(rb"\[FATAL tini \(\d+\)\] exec (.+?) failed: ([^\n]+)")
# Podman's init (catatonit) neither names the program nor exits 127: exit 1 and this line.
_CATATONIT_EXEC_FAILED = re.compile(rb"ERROR \(catatonit:\d+\): failed to exec pid1: ([^\n]+)")
_CREATE_RETRIES = 3
_DRAIN_SECONDS = 10     # after the container stopped, for its last output to reach the job's files
_POLL_MS = 200          # how soon a relay stuck on the job's side notices that the container is gone


@dataclass(frozen=True)
class ExitResult:
    """How the job ended: an exit code, or a signal, plus any runtime failure."""
    exit_code: int | None
    signal: int | None
    oom: bool = False
    usage: Usage = field(default_factory=Usage)
    failure: Failure | None = None

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by signal {self.signal}"
        return f"exited with code {self.exit_code}"

    def to_dict(self) -> dict:
        """A JSON-ready dict (the agent sends it to the launcher)."""
        return {"exit_code": self.exit_code, "signal": self.signal, "oom": self.oom,
                "usage": asdict(self.usage), "failure": self.failure.to_dict() if self.failure else None}

    @classmethod
    def from_dict(cls, data: dict) -> "ExitResult":
        failure = Failure.from_dict(data["failure"]) if data.get("failure") else None
        return cls(data.get("exit_code"), data.get("signal"), bool(data.get("oom")),
                   Usage.from_dict(data.get("usage")), failure)


@dataclass
class JobIO:
    """Where the container's streams go: file descriptors owned by the caller."""
    stdout_fd: int
    stderr_fd: int
    stdin_fd: int | None = None


def prepare_scratch(scratch_dir: str, uid: int, gid: int) -> None:
    """Make `<scratch>/tmp` and `<scratch>/var/tmp` (the local runner's habit; containers now get tmpfs).

    Root may run this in a directory the job's user owns, so every step goes
    through directory file descriptors: the scratch dir is opened with no
    symbolic link anywhere in its path (openat2 RESOLVE_NO_SYMLINKS, else an
    O_NOFOLLOW walk), each child with O_NOFOLLOW relative to its parent's fd,
    and owner/mode are set through the child's fd.  A link the user plants or
    swaps in between two steps can never make root create, chown or chmod
    something outside the scratch dir.  The agent does not call this at all.
    """
    try:
        scratch_fd = safefs.open_no_symlinks(scratch_dir)
    except OSError as err:
        raise Failure(Code.POLICY_REFUSED, f"scratch dir {scratch_dir} is not a directory reached without "
                                           f"symbolic links: {err.strerror}") from err
    opened = [scratch_fd]
    try:
        opened.append(_make_private_dir(scratch_fd, "tmp", 0o1777, uid, gid, scratch_dir))
        var_fd = _make_private_dir(scratch_fd, "var", 0o755, uid, gid, scratch_dir)
        opened.append(var_fd)
        opened.append(_make_private_dir(var_fd, "tmp", 0o1777, uid, gid, scratch_dir))
    finally:
        for fd in opened:
            os.close(fd)


def _make_private_dir(parent_fd: int, name: str, mode: int, uid: int, gid: int, scratch_dir: str) -> int:
    """mkdir (if absent) + open without following links + fix owner and mode through the fd."""
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        fd = safefs.open_beneath(parent_fd, name)
    except OSError as err:
        raise Failure(Code.POLICY_REFUSED, f"{name} in {scratch_dir} must be a directory, not a link or a file: "
                                           f"remove it ({err.strerror})") from err
    if os.geteuid() == 0:
        os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)
    return fd


OOM_EVENT_GRACE = 2.0   # seconds to wait for an engine's late OOM flag (see ContainerRun._oom_unflagged)
DISK_WALK_BUDGET = 20   # the disk walk's share of the time: at most 1/20 (see ContainerRun._watch_disk)


class ContainerRun:
    """One container's life; `stop`, `suspend` and `resume` may be called from other threads."""

    def __init__(self, engine: Engine, spec: ContainerSpec, io: JobIO, *, kill_grace: float = 10.0,
                 on_created: Callable[[str], None] | None = None, disk_limit_kb: int | None = None,
                 disk_check_period: float = 30.0, on_started: Callable[[str], None] | None = None,
                 reports_lost_output: bool = False) -> None:
        self.engine = engine
        self.spec = spec
        self.io = io
        self.kill_grace = kill_grace
        self.on_created = on_created
        self.on_started = on_started   # after the engine started it (its host ports exist from then)
        self.container_id: str | None = None
        self._lock = threading.Lock()
        self._signals_sent: list[int] = []
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._paused = False
        self._stderr_head = bytearray()
        self._usage = Usage()
        self._over_disk: Failure | None = None
        self.disk_limit_kb = disk_limit_kb
        self._volumes: list[str] | None = None   # the container's anonymous volumes, read once it exists
        self.disk_check_period = disk_check_period
        self.cgroup = ContainerCgroup(spec.cgroup_parent) if spec.cgroup_parent else None
        self._attach: EngineStream | None = None
        self._abandon = threading.Event()   # the container is gone: relays stop, whatever they wait for
        # ("stdout" or "stderr", why) when a write to the job's own output fd failed (a full disk):
        # the rest of that output is lost.  A caller that says so itself (`reports_lost_output`,
        # the local runner) gets no warning line of ours besides its own.
        self.output_lost: tuple[str, OSError] | None = None
        self.reports_lost_output = reports_lost_output

    # -- control from other threads -------------------------------------------
    def stop(self, signum: int = signals.SIGTERM, grace: float | None = None) -> None:
        """Soft kill now, hard kill after the grace period if the container still runs."""
        grace = self.kill_grace if grace is None else grace
        with self._lock:
            self._stopping.set()
            self._signals_sent.append(int(signum))
            container_id = self.container_id
        if container_id is None:
            return
        self.resume()  # a paused job cannot act on its soft-kill signal (the starter continues it too)
        log.info("stopping %s with signal %d, hard kill in %.0f s", self.spec.name, signum, grace)
        self._safe_kill(container_id, int(signum))
        threading.Thread(target=self._hard_kill_after, args=(container_id, grace), daemon=True).start()

    def _hard_kill_after(self, container_id: str, grace: float) -> None:
        if not self._finished.wait(grace):
            with self._lock:
                self._signals_sent.append(signals.SIGKILL)
            log.info("grace of %.0f s is over for %s: SIGKILL", grace, self.spec.name)
            self._safe_kill(container_id, signals.SIGKILL)

    def _safe_kill(self, container_id: str, signum: int) -> None:
        try:
            self.engine.kill(container_id, signum)
        except Failure as failure:
            log.warning("cannot signal %s: %s", self.spec.name, failure.reason)

    def suspend(self) -> bool:
        """Pause the container (idempotent: the launcher's SIGTSTP and the agent's state watch may both ask)."""
        with self._lock:
            if not self.container_id or self._paused or self._finished.is_set():
                return False
            self._paused = True
            container_id = self.container_id
        log.info("suspending %s: pause", self.spec.name)
        try:
            self.engine.pause(container_id)
        except Failure as failure:
            log.warning("cannot pause %s: %s", self.spec.name, failure.reason)
            return False
        return True

    def resume(self) -> bool:
        """Unpause the container if we paused it (idempotent, like suspend)."""
        with self._lock:
            if not self.container_id or not self._paused:
                return False
            self._paused = False
            container_id = self.container_id
        log.info("continuing %s: unpause", self.spec.name)
        try:
            self.engine.unpause(container_id)
        except Failure as failure:
            log.warning("cannot unpause %s: %s", self.spec.name, failure.reason)
            return False
        return True

    # -- the lifecycle ---------------------------------------------------------
    def run(self) -> ExitResult:
        """Create, attach, start, wait, inspect; always remove. Raises Failure when it cannot start."""
        try:
            if self.cgroup is not None:
                self.cgroup.remove()  # a leftover of an earlier attempt would add its counters to ours
            self.container_id = self._create()
            if self.on_created is not None:
                self.on_created(self.container_id)
            pumps = self._start_pumps(self.engine.attach(self.container_id, stdin=self.spec.stdin_open))
            if self._stopping.is_set():
                return ExitResult(None, self._signals_sent[0])
            self.engine.start(self.container_id, self.spec.name)
            log.info("started %s (%s) image %s", self.spec.name, self.container_id[:12], self.spec.image)
            if self.on_started is not None:
                self.on_started(self.container_id)
            self._start_monitors()
            return self._wait_for_result(pumps)
        finally:
            self._finished.set()
            if self.container_id is not None:
                self._remove()
            self._end_streams()

    def adopt(self, container_id: str, running: bool) -> ExitResult:
        """Instead of `run`: take over a container an earlier agent created (no create, no start).

        Attach to it if it still runs (what it wrote while nobody was attached is
        lost), wait, inspect; always remove.  `on_created` is told its id, as after a create.
        """
        self.container_id = container_id
        try:
            if self.on_created is not None:
                self.on_created(self.container_id)
            pumps = []
            if running:
                pumps = self._start_pumps(self.engine.attach(self.container_id, stdin=False))
                self._start_monitors()
            return self._wait_for_result(pumps)
        finally:
            self._finished.set()
            self._remove()
            self._end_streams()

    def _wait_for_result(self, pumps: list[threading.Thread]) -> ExitResult:
        """Wait for the container to stop, drain its output, then read how it ended."""
        self.engine.wait(self.container_id)
        self._finished.set()
        self._final_usage()
        for pump in pumps:
            pump.join(timeout=_DRAIN_SECONDS)
        return self._result()

    def _end_streams(self) -> None:
        """The container is gone: end its relays and close its attach connection, whatever they are doing.

        A relay still running here is stuck on the job's side (an output pipe
        nobody reads, an input that never ends); it stops within a poll period
        and closes its own copies of the job's fds, so nothing of it is left,
        and it never writes to (or reads from) an fd number the agent has
        closed and perhaps reused for another job.
        """
        self._abandon.set()
        if self._attach is not None:
            self._attach.close()

    def _start_monitors(self) -> None:
        threading.Thread(target=self._collect_usage, daemon=True, name="usage").start()
        if self.disk_limit_kb:
            threading.Thread(target=self._watch_disk, daemon=True, name="disk").start()

    def _create(self) -> str:
        """Create; a leftover container of the same name is removed first (bounded retries)."""
        for attempt in range(_CREATE_RETRIES):
            try:
                return self.engine.create(self.spec)
            except Failure as failure:
                if "already in use" not in failure.reason or attempt == _CREATE_RETRIES - 1:
                    raise
                self._remove_leftover()
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def _remove_leftover(self) -> None:
        state = self.engine.inspect(self.spec.name)
        if state is None:
            return
        mine = self.spec.label("uid")
        owner_agent = state.labels.get(AGENT_LABEL)
        if owner_agent is not None and owner_agent != self.spec.label("agent"):
            # another execute node's agent on this engine runs a job of the same name (e.g.
            # cluster 1.0 of another schedd): never remove it; this job comes back later
            raise Failure(Code.ENGINE_ERROR,
                          f"a container named {self.spec.name} belongs to another condor_docker agent "
                          f"({owner_agent}) on this engine; the job will be retried")
        if state.labels.get(UID_LABEL) != mine:
            raise Failure(Code.POLICY_REFUSED,
                          f"a container named {self.spec.name} exists and is not this job's: remove it by hand")
        log.warning("removing leftover container %s (%s) of an earlier attempt", self.spec.name, state.id[:12])
        self.engine.remove(state.id)

    def _remove(self) -> None:
        try:
            self.engine.remove(self.container_id, self.spec.cgroup_parent)   # its parent cgroup goes with it
            log.info("removed %s (%s)", self.spec.name, self.container_id[:12])
        except Failure as failure:
            log.error("cannot remove %s (%s): %s; the reaper will retry",
                      self.spec.name, self.container_id[:12], failure.reason)

    def _start_pumps(self, attach: EngineStream) -> list[threading.Thread]:
        """The relays, each with its own copies of the job's fds, which it closes when it ends."""
        self._attach = attach
        relays: list[tuple[Callable[..., None], tuple[int, ...]]] = [(self._pump_output, _dups(
            self.io.stdout_fd, self.io.stderr_fd))]
        if self.spec.stdin_open and self.io.stdin_fd is not None:
            relays.append((self._pump_input, _dups(self.io.stdin_fd)))
        pumps = []
        for number, (target, fds) in enumerate(relays):
            pump = threading.Thread(target=target, args=(attach, *fds), daemon=True, name="relay")
            try:
                pump.start()
            except RuntimeError:   # no thread: this relay's fds and the later ones' are nobody's
                for _, unused in relays[number:]:
                    _close_all(unused)
                raise
            pumps.append(pump)
        return pumps[:1]  # only output must be drained before the result is read

    def _pump_output(self, attach: EngineStream, stdout_fd: int, stderr_fd: int) -> None:
        try:
            writers = {1: _JobFdWriter(stdout_fd, self._abandon), 2: _JobFdWriter(stderr_fd, self._abandon)}
            for stream, data in frames(attach):
                if stream == 2 and len(self._stderr_head) < 4096:
                    self._stderr_head += data[:4096 - len(self._stderr_head)]
                name = "stderr" if stream == 2 else "stdout"
                try:
                    written = writers[2 if stream == 2 else 1].write(data)
                except OSError as err:
                    self.output_lost = (name, err)
                    raise
                if not written:
                    log.warning("output relay of %s abandoned: the job's %s takes no more output",
                                self.spec.name, name)
                    break
        except (OSError, ValueError) as err:
            if not self._abandon.is_set():
                level = logging.INFO if self.output_lost and self.reports_lost_output else logging.WARNING
                log.log(level, "output relay of %s ended: %s", self.spec.name, err)
        finally:
            attach.close()
            os.close(stdout_fd)
            os.close(stderr_fd)

    def _pump_input(self, attach: EngineStream, stdin_fd: int) -> None:
        """The job's stdin into the container until its end (then half-close) or the container's."""
        poller = select.poll()
        poller.register(stdin_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while not self._finished.is_set():
                if not poller.poll(_POLL_MS):
                    continue
                chunk = os.read(stdin_fd, 65536)
                if not chunk:
                    attach.shutdown(socket.SHUT_WR)
                    break
                attach.sendall(chunk)
        except OSError as err:
            if not self._finished.is_set():
                log.warning("input relay of %s ended: %s", self.spec.name, err)
        finally:
            os.close(stdin_fd)

    def _collect_usage(self) -> None:
        """Live figures from the engine's stream (one sample a second); `_final_usage` completes them."""
        try:
            with contextlib.closing(self.engine.stats_stream(self.container_id)) as samples:
                self._read_stats(samples)
        except Exception as err:  # statistics are best effort; never fail the job for them
            log.debug("stats of %s ended: %s", self.spec.name, err)

    def _read_stats(self, samples: Iterator[dict]) -> None:
        peak = 0
        for sample in samples:
            cpu = sample.get("cpu_stats", {}).get("cpu_usage", {})
            memory = sample.get("memory_stats", {})
            peak = max(peak, int(memory.get("max_usage") or memory.get("usage") or 0))
            rx, tx = network_bytes(sample)
            if cpu.get("total_usage"):
                with self._lock:
                    self._usage = dataclasses.replace(
                        self._usage, cpu_user_s=max(self._usage.cpu_user_s, cpu.get("usage_in_usermode", 0) / 1e9),
                        cpu_sys_s=max(self._usage.cpu_sys_s, cpu.get("usage_in_kernelmode", 0) / 1e9),
                        peak_memory_mb=max(self._usage.peak_memory_mb, mb_ceil(peak)),
                        network_in_bytes=max(self._usage.network_in_bytes, rx),
                        network_out_bytes=max(self._usage.network_out_bytes, tx))
            if self._finished.is_set():
                break

    def _final_usage(self) -> None:
        """The exact totals from the container's own parent cgroup, which outlives the container's."""
        disk_kb = self._disk()[0]
        with self._lock:
            self._usage = dataclasses.replace(self._usage, disk_kb=max(self._usage.disk_kb, disk_kb))
        final = self.cgroup.read() if self.cgroup is not None else None
        if final is None:
            return
        with self._lock:
            self._usage = dataclasses.replace(
                self._usage, cpu_user_s=max(self._usage.cpu_user_s, final.cpu_user_s),
                cpu_sys_s=max(self._usage.cpu_sys_s, final.cpu_sys_s),
                peak_memory_mb=max(self._usage.peak_memory_mb, final.peak_memory_mb))

    def usage(self) -> Usage:
        """The figures so far (live while the container runs)."""
        with self._lock:
            return self._usage

    def _disk(self) -> tuple[int, int, int, str]:
        """(total, scratch dir, writable layer + the image's anonymous volumes) in KB, what the job wrote
        here, and why the size is not complete ("" when it is): an incomplete walk is a hold."""
        try:
            layer_kb = (self.engine.size_rw(self.container_id) or 0) // 1024
        except Failure as failure:
            log.debug("cannot size the writable layer of %s: %s", self.spec.name, failure.reason)
            layer_kb = 0
        scratch = tree_size(self.spec.working_dir)
        why = "" if scratch.complete else f"scratch dir: {scratch.why}"
        for source in self._volume_sources():   # an image's VOLUME: written nowhere else we count
            volume = tree_size(source)
            layer_kb += volume.kb
            why = why or ("" if volume.complete else f"volume {source}: {volume.why}")
        return scratch.kb + layer_kb, scratch.kb, layer_kb, why

    def _volume_sources(self) -> list[str]:
        """Host paths of the container's anonymous volumes (engine-made, under the engine's root)."""
        if self._volumes is None:
            try:
                details = self.engine.inspect_details(self.container_id) or {}
            except Failure:
                return []
            self._volumes = [str(m.get("Source")) for m in details.get("Mounts") or []
                             if m.get("Type") == "volume" and str(m.get("Source", "")).startswith("/")]
        return self._volumes

    def _watch_disk(self) -> None:
        """Every period: scratch dir + writable layer against the slot's Disk; over it -> kill, hold.

        A walk of a huge tree is expensive: the next one waits at least DISK_WALK_BUDGET times
        as long as this one took, so one job's million files cost the agent a bounded share
        of a CPU (about 1/DISK_WALK_BUDGET), whatever CONDOR_DOCKER_DISK_CHECK_PERIOD says.
        """
        delay = self.disk_check_period
        while not self._finished.wait(delay):
            started = time.monotonic()
            used_kb, scratch_kb, layer_kb, incomplete = self._disk()
            took = time.monotonic() - started
            delay = max(self.disk_check_period, took * DISK_WALK_BUDGET)
            if delay > self.disk_check_period:
                log.info("%s: the disk walk took %.1f s; the next in %.0f s", self.spec.name, took, delay)
            with self._lock:
                self._usage = dataclasses.replace(self._usage, disk_kb=max(self._usage.disk_kb, used_kb))
            if incomplete and not self._finished.is_set():
                self._over_disk = Failure(Code.OVER_DISK, (
                    f"Docker job's disk use cannot be measured ({incomplete}; {used_kb} KB counted so far): "
                    "keep the scratch dir plain directories with fewer, larger files and no mounts"))
            elif self.disk_limit_kb and used_kb > self.disk_limit_kb and not self._finished.is_set():
                self._over_disk = Failure(Code.OVER_DISK, (
                    f"Docker job has gone over its disk limit of {self.disk_limit_kb} KB: used {used_kb} KB "
                    f"(scratch dir {scratch_kb} KB, container layer and volumes {layer_kb} KB); "
                    "raise request_disk or write less"))
            if self._over_disk is not None:
                log.warning("%s: %s", self.spec.name, self._over_disk.reason)
                self.stop(signals.SIGKILL, 0)
                return

    def _result(self) -> ExitResult:
        state = self.engine.inspect(self.container_id)
        if state is None:
            raise Failure(Code.JOB_INTERRUPTED, f"container {self.spec.name} vanished before it was inspected")
        if state.error:
            raise Failure(Code.CONTAINER_REFUSED, f"Cannot run container {self.spec.name}: {state.error}")
        code = state.exit_code
        usage = self.usage()
        if self._over_disk is not None:
            return ExitResult(None, signals.SIGKILL, False, usage, self._over_disk)
        if state.oom_killed or self._oom_unflagged(code):
            return ExitResult(None, signals.SIGKILL, True, usage, Failure(
                Code.OVER_MEMORY, f"Docker job has gone over memory limit of {self.spec.memory_mb} Mb"))
        missing = self._init_exec_failed(code)
        if missing is not None:
            what, why = missing
            return ExitResult(code, None, False, usage, Failure(
                Code.EXECUTABLE_NOT_FOUND, f"Cannot run {what} in image {self.spec.image}: {why}"))
        signum = signal_of_exit_code(code)
        if signum is not None:
            return ExitResult(None, signum, False, usage)
        return ExitResult(code, None, False, usage)


    def _oom_unflagged(self, code: int) -> bool:
        """Whether a SIGKILL nobody here sent was the kernel's OOM killer, though the engine did not say so.

        Docker 20.10 may handle a container's exit before its OOM event (seen on a loaded
        2-core machine: OOMKilled false, exit 137, the job's peak at its limit), and Podman 4
        on cgroup v1 never sets OOMKilled.  So: inspect again for a moment, as the OOM event
        may still land; then trust the kernel's figure: the peak of the container's own parent
        cgroup at the limit means its memory cgroup ran out, and nothing else here kills by 9.
        """
        if code != 128 + signals.SIGKILL or self._signals_sent or not self.spec.memory_mb:
            return False
        deadline, pause = time.monotonic() + OOM_EVENT_GRACE, 0.05
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            state = self.engine.inspect(self.container_id)
            if state is None or state.oom_killed:
                return state is not None
        peak = self.usage().peak_memory_mb
        if peak >= self.spec.memory_mb:
            log.warning("%s: killed by signal 9 at its memory peak of %d MB (limit %d MB); the engine did not "
                        "flag an OOM kill, counting it as one", self.spec.name, peak, self.spec.memory_mb)
            return True
        return False

    def _init_exec_failed(self, code: int) -> tuple[str, str] | None:
        """(program, why) when the container's init could not exec the job: Docker's tini
        exits 127 naming it, Podman's catatonit exits 1 naming only pid 1 (the spec's first word)."""
        head = bytes(self._stderr_head)
        tini = _TINI_EXEC_FAILED.search(head)
        if code == 127 and tini:
            what, why = tini.groups()
            return what.decode(errors="replace"), why.decode(errors="replace")
        catatonit = _CATATONIT_EXEC_FAILED.search(head)
        argv = (self.spec.entrypoint or ()) + (self.spec.command or ())
        if code == 1 and catatonit and argv:
            return argv[0], catatonit.group(1).decode(errors="replace")
        return None


def _dups(*fds: int) -> tuple[int, ...]:
    copies: list[int] = []
    try:
        for fd in fds:
            copies.append(os.dup(fd))
    except OSError as err:   # out of fds: the job comes back later, on a less busy agent
        _close_all(copies)
        raise Failure(Code.AGENT_UNAVAILABLE, f"cannot relay the job's streams: {err.strerror}") from err
    return tuple(copies)


def _close_all(fds: tuple[int, ...] | list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class _JobFdWriter:
    """Writes to one of the job's output fds without ever blocking past `abandon`.

    A regular file (what the starter gives) or a device never blocks for long.
    A pipe or socket is the job's to read, and a job that does not read it
    would have blocked the relay forever: it is made non-blocking (the job's
    own open file, shared only with the job's processes) and written when
    poll says so, until `abandon` is set.
    """

    def __init__(self, fd: int, abandon: threading.Event) -> None:
        self.fd = fd
        self.abandon = abandon
        mode = os.fstat(fd).st_mode
        self.waits = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        if self.waits:
            os.set_blocking(fd, False)
            self.poller = select.poll()
            self.poller.register(fd, select.POLLOUT)

    def write(self, data: bytes) -> bool:
        """True when all of `data` was written; False when abandoned first."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                while not self.poller.poll(_POLL_MS):
                    if self.abandon.is_set():
                        return False
        return True


def signal_of_exit_code(code: int) -> int | None:
    """The signal a container's exit code says its job died of, or None for a plain exit.

    The engine reports a container whose main process (tini under --init, which
    passes its child's fate on, or the job itself) was killed by signal N as exit
    code 128+N.  HTCondor's own docker universe reads every code above 128 as a
    signal; we do the same for 129..128+NSIG-1, so `kill -SEGV $$` in a job is
    ExitBySignal = true, ExitSignal = 11, as in a vanilla job.  The price, shared
    with HTCondor, is that a job calling `exit 139` is reported as signal 11 too.
    """
    if 128 < code < 128 + signals.NSIG:
        return code - 128
    return None


