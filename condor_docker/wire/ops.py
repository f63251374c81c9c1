"""Every op of the agent's protocol, declared once: its request, its reply, its named errors.

(systemd varlink style: inputs, outputs and named errors in one file.)  The
framing is in protocol.py; this file says what one request holds.

    request   a frozen record per op (`REQUESTS`: op name -> class).  The
              agent builds it with `from_message(message)`, which checks every
              field's type and bounds and raises `BadRequest(field, why)`, never
              anything else; clients build it and send `to_message()`.
    reply     `{"ok": true, ...}` (the `*Reply` classes below say what follows
              "ok") or a refusal `{"ok": false, "failure": {"code", "reason"}}`
              (`failure_reply`); a malformed request is refused with
              POLICY_REFUSED (16) and a reason naming the field.
              A refusal a client acts on also names itself: `"error": <name>`
              (ERRORS, `error_of`).
    events    before the final line, launch/reattach/exec send `Started`,
              prepare (with progress) sends `PullProgress`; an exec client may
              send `Resize` lines while the command runs.

Compatibility: the JSON field names and values are the wire format, shared
with launchers started by an earlier version that still run after an
upgrade.  So `from_message` accepts what the agent always accepted (a number
where `int()`/`float()` took one, a null where a field was optional) and
ignores fields it does not know.

Stdlib only, like protocol.py, and light: the hooks import this file, and the
starter waits for JOB_EXIT, so the records are `Record`s (frozen, typed fields
from the class annotations, ==, repr: what a frozen dataclass gives) rather
than dataclasses, whose import (inspect) and class building would cost the
hook more than all the rest of its start.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

TYPE_CHECKING = False   # typing is not imported at run time: the JOB_EXIT hook starts through this module
if TYPE_CHECKING:
    from typing import Any, ClassVar

MAX_TEXT = 1 << 20          # a job ad's text (the whole line is at most protocol.MAX_LINE)
MAX_PATH = 4096             # PATH_MAX
MAX_NAME = 1024             # a container or slot name
MAX_ENV_ENTRIES = 4096
MAX_ARGV = 4096
MAX_ARG_BYTES = 256 * 1024
MAX_GRACE = 3600.0          # seconds; a longer grace is cut to this
MAX_JOB_ID = (1 << 31) - 1  # HTCondor's cluster and proc ids are non-negative 32-bit ints
MAX_TERMINAL = 10000        # rows and columns are below this
MAX_NUMBER_TEXT = 40        # a number sent as text (int("15")) is at most this long
TERM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class BadRequest(Exception):
    """The one error of a malformed request: which field, and what is wrong with it."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why)
        self.field = field
        self.why = why

    def __str__(self) -> str:
        return f"the field {self.field!r} {self.why}"


class Record:
    """A frozen record: its fields are the class's annotated names (not ClassVar), in order.

    `Record(*values, **by_name)`; a field with a class-level value has that default.
    Frozen (no attribute may be set after __init__), compared and shown field by field.
    """
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [name for name, kind in cls.__dict__.get("__annotations__", {}).items()
               if not str(kind).startswith("ClassVar") and name not in cls._fields]
        cls._fields = cls._fields + tuple(own)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} values")
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields or name in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated field {name!r}")
            values[name] = value
        for name in self._fields:
            if name in values:
                object.__setattr__(self, name, values[name])
            elif not hasattr(type(self), name):
                raise TypeError(f"{type(self).__name__}: the field {name!r} is missing")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._values() == self._values()   # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"


# -- field readers (each raises BadRequest naming the field) -----------------------------
_MISSING = object()


def _get(message: Mapping[str, Any], name: str, required: bool) -> Any:
    value = message.get(name, _MISSING)
    if value is _MISSING:
        if required:
            raise BadRequest(name, "is missing")
        return None
    return value


def _text(message: Mapping[str, Any], name: str, *, required: bool = True, nullable: bool = False,
          max_len: int = MAX_PATH, nonempty: bool = False, no_nul: bool = True) -> str | None:
    value = _get(message, name, required)
    if value is None and (nullable or not required):
        return None
    if not isinstance(value, str):
        raise BadRequest(name, f"must be a string, not {_kind(value)}")
    if len(value) > max_len:
        raise BadRequest(name, f"is longer than {max_len} characters")
    if nonempty and not value:
        raise BadRequest(name, "is empty")
    if no_nul and "\0" in value:
        raise BadRequest(name, "holds a NUL byte")
    return value


def _number_like(name: str, value: Any, convert: Any) -> Any:
    """`int(value)` / `float(value)` as the agent always did, of a JSON number or a short numeric string."""
    if isinstance(value, str):
        if len(value) > MAX_NUMBER_TEXT:
            raise BadRequest(name, f"must be a number, not a string of {len(value)} characters")
    elif not isinstance(value, (int, float)):
        raise BadRequest(name, f"must be a number, not {_kind(value)}")
    try:
        return convert(value)
    except (ValueError, OverflowError):
        raise BadRequest(name, f"must be a number, not {_show(value)}") from None


def _int(message: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = _number_like(name, _get(message, name, True), int)
    if not low <= value <= high:
        raise BadRequest(name, f"must be between {low} and {high}, not {_show(value)}")
    return value


def _show(value: Any, limit: int = MAX_NUMBER_TEXT) -> str:
    """A peer's value for a refusal: short, and never an error of its own (huge ints, deep lists)."""
    if isinstance(value, (str, bool, float)) or value is None:
        return repr(value if not isinstance(value, str) else value[:limit])
    if isinstance(value, int):
        return str(value) if value.bit_length() < 128 else f"a number of {value.bit_length()} bits"
    return _kind(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


# -- requests ----------------------------------------------------------------------------
class Request(Record):
    """What every request class has: its op name, `from_message` and `to_message`."""
    op: ClassVar[str] = ""

    @classmethod
    def from_message(cls, message: dict) -> Request:
        return cls()

    def to_message(self) -> dict:
        return {"op": self.op}


class Ping(Request):
    """Is the agent there, and is the engine usable?  Reply: `PingReply`."""
    op: ClassVar[str] = "ping"


class MachineAttrs(Request):
    """The slot attributes advertise publishes (HasDocker, ...).  Reply: `MachineAttrsReply`."""
    op: ClassVar[str] = "machine_attrs"


class Status(Request):
    """The jobs the agent serves for the peer (all of them for root).  Reply: `StatusReply`."""
    op: ClassVar[str] = "status"


class AdminStatus(Request):
    """`condor_docker status`: health, jobs, containers, pulls, cache (a free-form report)."""
    op: ClassVar[str] = "admin_status"


class Prepare(Request):
    """PREPARE_JOB: check the job and pull its image.  Events: `PullProgress`; reply: `PrepareReply`.

    `job_ad` must be sent; null means "read .job.ad from the scratch dir".
    """
    op: ClassVar[str] = "prepare"
    scratch_dir: str
    job_ad: str | None
    progress: bool = False

    @classmethod
    def from_message(cls, message: dict) -> Prepare:
        scratch_dir = _text(message, "scratch_dir", nonempty=True)
        job_ad = _text(message, "job_ad", nullable=True, max_len=MAX_TEXT, no_nul=False)
        progress = message.get("progress")
        if isinstance(progress, (list, dict)):
            raise BadRequest("progress", f"must be true or false, not {_kind(progress)}")
        return cls(scratch_dir, job_ad, bool(progress))   # type: ignore[arg-type]

    def to_message(self) -> dict:
        return {"op": self.op, "job_ad": self.job_ad, "scratch_dir": self.scratch_dir, "progress": self.progress}


class Launch(Request):
    """The launcher, with its stdin/stdout/stderr as fds: run the job.  Events: `Started`; reply: `LaunchReply`."""
    op: ClassVar[str] = "launch"
    scratch_dir: str
    starter_env: Mapping[str, str]

    @classmethod
    def from_message(cls, message: dict) -> Launch:
        scratch_dir = _text(message, "scratch_dir", nonempty=True)
        value = message.get("starter_env")
        if value is None:
            return cls(scratch_dir, {})   # type: ignore[arg-type]
        if not isinstance(value, dict) or len(value) > MAX_ENV_ENTRIES:
            raise BadRequest("starter_env", f"must be a mapping of at most {MAX_ENV_ENTRIES} names to strings")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise BadRequest("starter_env", "must map names to strings")
        return cls(scratch_dir, dict(value))   # type: ignore[arg-type]

    def to_message(self) -> dict:
        return {"op": self.op, "scratch_dir": self.scratch_dir, "starter_env": dict(self.starter_env)}


class _ContainerRequest(Request):
    container: str

    @classmethod
    def from_message(cls, message: dict):  # type: ignore[override]
        return cls(_text(message, "container", max_len=MAX_NAME, nonempty=True))   # type: ignore[arg-type]

    def to_message(self) -> dict:
        return {"op": self.op, "container": self.container}


class Reattach(_ContainerRequest):
    """A launcher whose agent restarted, with its fds: follow the running container again (as Launch)."""
    op: ClassVar[str] = "reattach"


class Suspend(_ContainerRequest):
    """Pause the container (the starter suspended the job).  Reply: `{"ok": true}`."""
    op: ClassVar[str] = "suspend"


class Resume(_ContainerRequest):
    """Unpause the container.  Reply: `{"ok": true}`."""
    op: ClassVar[str] = "resume"


class Signal(Request):
    """Send a signal to the job; `grace` (seconds, cut to 0..MAX_GRACE) before a KILL follows."""
    op: ClassVar[str] = "signal"
    container: str
    signal: int
    grace: float | None = None

    @classmethod
    def from_message(cls, message: dict) -> Signal:
        container = _text(message, "container", max_len=MAX_NAME, nonempty=True)
        # the signal module only here: the hooks build requests, they never parse one
        import signal as signals
        signum = _int(message, "signal", 1, signals.NSIG - 1)
        grace = message.get("grace")
        if grace is not None:
            grace = _number_like("grace", grace, float)
            if math.isnan(grace):
                raise BadRequest("grace", "must be a number of seconds, not NaN")
            grace = min(max(grace, 0.0), MAX_GRACE)
        return cls(container, signum, grace)   # type: ignore[arg-type]

    def to_message(self) -> dict:
        return {"op": self.op, "container": self.container, "signal": self.signal, "grace": self.grace}


class Cleanup(Request):
    """JOB_EXIT: remove job `cluster.proc`'s containers (of `slot`, when named).  Reply: `CleanupReply`."""
    op: ClassVar[str] = "cleanup"
    cluster: int
    proc: int
    slot: str | None = None

    @classmethod
    def from_message(cls, message: dict) -> Cleanup:
        cluster = _int(message, "cluster", 0, MAX_JOB_ID)
        proc = _int(message, "proc", 0, MAX_JOB_ID)
        slot = message.get("slot") or None      # a falsy slot always meant "any slot"
        if isinstance(slot, (int, float)) and not isinstance(slot, bool):
            slot = str(slot)    # the agent always formatted whatever came
        slot = _text({"slot": slot}, "slot", required=False, max_len=MAX_NAME)
        return cls(cluster, proc, slot)

    def to_message(self) -> dict:
        message: dict[str, Any] = {"op": self.op, "cluster": self.cluster, "proc": self.proc}
        if self.slot is not None:
            message["slot"] = self.slot
        return message


class CleanupStarterJob(Request):
    """JOB_EXIT, by the kernel's word: remove the containers of the peer's condor_starter.  Reply: `CleanupReply`.

    No fields: the agent finds the job from the peer's credentials (its nearest
    trusted condor_starter ancestor, the starter that runs the hook), so the hook
    need not parse the job ad for ClusterId/ProcId/slot.  Only containers of
    that starter (label starter_pid) and the peer's uid are removed.  Named
    errors: NO_STARTER (no such ancestor: ask with `Cleanup`); an agent older
    than this op answers UNKNOWN_OP (`error_of`), and the client falls back to
    `Cleanup` too.
    """
    op: ClassVar[str] = "cleanup_starter_job"


class Exec(Request):
    """condor_ssh_to_job, with the session's fds: run `argv` in the job's running container.

    Events: `Started`, then the client may send `Resize`; reply: `ExecReply`.
    `rows`/`cols` count only with `tty` (and both or neither); `term` is checked
    when sent and kept only with a terminal.
    """
    op: ClassVar[str] = "exec"
    scratch_dir: str
    argv: tuple[str, ...]
    tty: bool = False
    rows: int | None = None
    cols: int | None = None
    term: str | None = None

    @property
    def size(self) -> tuple[int, int] | None:
        return (self.rows, self.cols) if self.rows is not None and self.cols is not None else None

    @classmethod
    def from_message(cls, message: dict) -> Exec:
        scratch_dir = _text(message, "scratch_dir", nonempty=True)
        argv = _get(message, "argv", True)
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise BadRequest("argv", "must be a non-empty list of strings")
        if len(argv) > MAX_ARGV or sum(len(a) for a in argv) > MAX_ARG_BYTES or any("\0" in a for a in argv):
            raise BadRequest("argv", "is too long or holds a NUL byte")
        tty = message.get("tty", False)
        if not isinstance(tty, bool):
            raise BadRequest("tty", "must be true or false")
        rows = cols = None
        if tty and message.get("rows") is not None:
            rows, cols = terminal_size(message.get("rows"), message.get("cols"))
        term = message.get("term")
        if term is not None and (not isinstance(term, str) or not TERM_NAME.match(term)):
            raise BadRequest("term", f"{_show(term, 80)} is not a terminal type name")
        return cls(scratch_dir, tuple(argv), tty, rows, cols, term if tty else None)   # type: ignore[arg-type]

    def to_message(self) -> dict:
        message: dict[str, Any] = {"op": self.op, "scratch_dir": self.scratch_dir, "argv": list(self.argv),
                                   "tty": self.tty}
        if self.size is not None:
            message["rows"], message["cols"] = self.size
        if self.term is not None:
            message["term"] = self.term
        return message


def terminal_size(rows: Any, cols: Any) -> tuple[int, int]:
    """(rows, cols), two small positive integers, or BadRequest naming the terminal size."""
    for name, value in (("rows", rows), ("cols", cols)):
        if not (isinstance(value, int) and 0 < value < MAX_TERMINAL):
            raise BadRequest(name, f"must be below {MAX_TERMINAL}: a terminal size is two small positive "
                                   f"integers, not {_show(rows, 20)} x {_show(cols, 20)}")
    return rows, cols


REQUESTS: dict[str, type[Request]] = {cls.op: cls for cls in (
    Ping, MachineAttrs, Status, AdminStatus, Prepare, Launch, Reattach, Signal, Suspend, Resume, Cleanup,
    CleanupStarterJob, Exec)}


# -- exec's control line (client -> agent, while the command runs) ------------------------
class Resize(Record):
    """`{"resize": [rows, cols]}`: the session's terminal changed size."""
    rows: int
    cols: int

    @classmethod
    def from_message(cls, message: dict) -> Resize:
        value = message.get("resize")
        if not isinstance(value, list) or len(value) != 2:
            raise BadRequest("resize", "must be [rows, cols]")
        return cls(*terminal_size(*value))

    def to_message(self) -> dict:
        return {"resize": [self.rows, self.cols]}


# -- events and replies (agent -> client) -------------------------------------------------
class Started(Record):
    """Launch, reattach and exec: the container (named) runs."""
    container: str

    def to_message(self) -> dict:
        return {"event": "started", "container": self.container}


class Services(Record):
    """Launch: the job's container_service_names and the host port each one is reachable on."""
    ports: Mapping[str, int]

    def to_message(self) -> dict:
        return {"event": "services", "ports": dict(self.ports)}


def pull_progress(snapshot: Mapping[str, Any]) -> dict:
    """Prepare with progress: one snapshot of a pull (reference, bytes_done, bytes_total, layers, ...)."""
    return {"event": "pull_progress", **snapshot}


class PingReply(Record):
    version: str
    healthy: bool
    reason: str | None

    def to_message(self) -> dict:
        return {"ok": True, "version": self.version, "healthy": self.healthy, "reason": self.reason}


class MachineAttrsReply(Record):
    attrs: Mapping[str, Any]

    def to_message(self) -> dict:
        return {"ok": True, "attrs": dict(self.attrs)}


class StatusReply(Record):
    jobs: list

    def to_message(self) -> dict:
        return {"ok": True, "jobs": list(self.jobs)}


class PrepareReply(Record):
    image: str

    def to_message(self) -> dict:
        return {"ok": True, "image": self.image}


class LaunchReply(Record):
    """Launch and reattach: the container's end (exit_code, signal, oom, usage, failure, ...)."""
    result: Mapping[str, Any]

    def to_message(self) -> dict:
        return {"ok": True, "result": dict(self.result)}


class CleanupReply(Record):
    removed: list

    def to_message(self) -> dict:
        return {"ok": True, "removed": list(self.removed)}


class ExecReply(Record):
    exit_code: int

    def to_message(self) -> dict:
        return {"ok": True, "exit_code": self.exit_code}


OK: dict = {"ok": True}   # signal, suspend, resume


# -- named errors: a refusal a client acts on says which, as {"error": <name>} beside "failure" --
UNKNOWN_OP = "unknown_op"    # the agent has no such op (it is older than the client)
NO_STARTER = "no_starter"    # cleanup_starter_job: no trusted condor_starter among the peer's ancestors
ERRORS = (UNKNOWN_OP, NO_STARTER)


def failure_reply(failure_dict: Mapping[str, Any], error: str | None = None) -> dict:
    """The refusal line: `failure_dict` is core.failures.Failure.to_dict() ({"code", "reason"});
    `error`, one of ERRORS, when the client is to act on which refusal this is."""
    reply: dict[str, Any] = {"ok": False, "failure": dict(failure_dict)}
    if error is not None:
        assert error in ERRORS, error
        reply["error"] = error
    return reply


def error_of(reply: Mapping[str, Any], op: str) -> str | None:
    """The named error of a refusal of `op` (one of ERRORS), else None.

    An agent from before named errors refused an op it did not know with only the
    reason `unknown op '<op>'` (service.py, unchanged since the first release):
    that is UNKNOWN_OP too, so a new client can fall back to an older op.
    """
    if reply.get("ok") is not False:
        return None
    error = reply.get("error")
    if error in ERRORS:
        return error
    failure = reply.get("failure")
    if isinstance(failure, Mapping) and failure.get("reason") == f"unknown op {op!r}":
        return UNKNOWN_OP
    return None
