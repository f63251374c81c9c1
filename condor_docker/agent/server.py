"""`condor_docker agent`: the trusted daemon that alone talks to the Docker engine.

It runs as root (started by condor_master), listens on a unix socket that
anyone may connect to (mode 0666) and authorizes each request by the peer's
kernel credentials (SO_PEERCRED), never by message content.  One thread per
connection, one request per connection, within caps in total and per uid
(`ConnectionLimits`); the whole request must arrive within
CONDOR_DOCKER_REQUEST_TIMEOUT; fds that come with a request are always
closed.  Every request is logged as one line:

    op=launch uid=1001 pid=4242 job=12.0 container=HTCJob_12_0_slot1_1 result=ok

Ops: ping, machine_attrs, status, admin_status here; prepare, launch, reattach, signal,
suspend, resume, cleanup in `agent_jobs.py`; exec in `agent_exec.py`.

Shutdown (SIGTERM, SIGQUIT, SIGINT) stops accepting, removes the socket and
exits *without* touching running containers: condor_master restarts the agent,
the running jobs' launchers reconnect with `reattach`, and the reaper removes
what nobody reattached.  At start the agent recovers: it lists its managed
containers and leaves the running ones for their launchers.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import select
import signal as signals
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.failures import Code, Failure
from ..core.settings import Settings, SettingsError, load_settings
from ..wire.protocol import (
    Connection,
    ProtocolError,
    close_fds,
    encode,
    peer_credentials,
)

log = logging.getLogger("condor_docker.agent")

EX_CONFIG = 78       # a knob has a value we cannot use (named in the message)
EX_SOCKET = 71       # the socket (or its directory) cannot be used safely
LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn
LOG_NAME = "CondorDockerLog"


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("condor_docker")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


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


class Agent:
    """The ops, with their dependencies; `serve` is the socket loop around `handle`."""

    def __init__(self, settings: Settings, engine: Any = None, health: Any = None,
                 cache: Any = None, reaper: Any = None) -> None:
        from ..engine.client import Engine
        from ..engine.health import Health
        from ..engine.image_cache import ImageCache
        from ..engine.reaper import Reaper
        from .exec_op import ExecOp
        from .jobs import JobService

        self.settings = settings
        self.engine = engine or Engine(settings.engine_url, settings.engine_timeout)
        self.health = health or Health(self.engine, settings)
        self.cache = cache or ImageCache(self.engine, settings)
        self.jobs = JobService(settings, self.engine, self.cache)
        self.reaper = reaper or Reaper(self.engine, settings, self.jobs.tracked_ids,
                                       lambda: self.health.current().healthy)
        self._ops: dict[str, Callable[[RequestContext, dict], dict]] = {
            "ping": self.ping, "machine_attrs": self.machine_attrs, "status": self.jobs.status,
            "prepare": self.jobs.prepare, "launch": self.jobs.launch, "reattach": self.jobs.reattach,
            "signal": self.jobs.signal, "suspend": self.jobs.suspend, "resume": self.jobs.resume,
            "cleanup": self.jobs.cleanup, "admin_status": self.admin_status,
            "exec": ExecOp(self.engine).run,
        }

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self.jobs.recover()
        self.health.start()
        self.reaper.start()

    def stop(self) -> None:
        """Stop the background threads; running containers are left alone (see module doc)."""
        self.reaper.stop()
        self.health.stop()

    # -- simple ops ------------------------------------------------------------------
    def ping(self, ctx: RequestContext, message: dict) -> dict:
        state = self.health.current()
        return {"ok": True, "version": package_version(), "healthy": state.healthy, "reason": state.reason}

    def machine_attrs(self, ctx: RequestContext, message: dict) -> dict:
        from ..engine.health import NOT_CHECKED

        state = self.health.current()
        if state is NOT_CHECKED:
            # The startd's first cron run comes right at start; "not checked yet" would
            # keep HasDocker false for a whole cron period.  Check now (cheap; the
            # lock makes this wait for a check already under way).
            state = self.health.check()
        attrs: dict[str, Any] = {"HasDocker": state.healthy}
        if state.version:
            attrs["DockerVersion"] = state.version
        if not state.healthy:
            attrs["DockerOfflineReason"] = state.reason or "the Docker engine is not usable"
        attrs["DockerNetworks"] = [n for n in self.settings.networks
                                   if not state.networks or n in state.networks]
        for volume in self.settings.volumes:
            attrs[f"HasDockerVolume{volume.name}"] = True
        if state.healthy:
            try:
                attrs.update(self.cache.advertised())
            except Failure as err:
                log.warning("cannot list the image cache: %s", err.reason)
        return {"ok": True, "attrs": attrs}

    def admin_status(self, ctx: RequestContext, message: dict) -> dict:
        """`condor_docker status`: health, jobs, containers, pulls, cache (see status.py)."""
        from ..admin.status import gather
        jobs = self.jobs.status(ctx, message)["jobs"]
        return gather(health=self.health, jobs=jobs, engine=self.engine, cache=self.cache, uid=ctx.uid)

    # -- one request -----------------------------------------------------------------
    def handle(self, ctx: RequestContext, message: dict) -> dict:
        op = self._ops.get(ctx.op)
        if op is None:
            raise Failure(Code.POLICY_REFUSED, f"unknown op {ctx.op!r}")
        return op(ctx, message)

    def serve_connection(self, sock: socket.socket, creds: tuple[int, int, int] | None = None) -> None:
        connection = Connection(sock)
        fds: list[int] = []
        try:
            pid, uid, gid = creds or peer_credentials(sock)
            deadline = time.monotonic() + self.settings.request_timeout
            try:
                message, fds = connection.receive(with_fds=True, deadline=deadline)
            except (OSError, ProtocolError) as err:
                log.warning("op=- uid=%d pid=%d result=unreadable-request (%s)", uid, pid, err)
                self._refuse_quietly(connection, f"unreadable request: {err}")
                return
            if message is None:
                return
            sock.settimeout(None)
            ctx = RequestContext(str(message.get("op", ""))[:64], pid, uid, gid, connection, fds)
            reply = self._answer(ctx, message)
            try:
                connection.send(reply)
            except (OSError, ValueError):
                pass
            result = "ok" if reply.get("ok") else f"failed code={reply['failure']['code']} " \
                                                      f"reason={reply['failure']['reason']!r}"
            log.info("op=%s uid=%d pid=%d job=%s container=%s result=%s%s", ctx.op, uid, pid, ctx.job,
                     ctx.container, result, "".join(f" {k}={v}" for k, v in ctx.extra.items()))
        finally:
            close_fds(fds)
            connection.close()

    @staticmethod
    def _refuse_quietly(connection: Connection, reason: str) -> None:
        """A clean refusal for a malformed request (the client may be gone already)."""
        try:
            connection.sock.settimeout(1.0)
            connection.send({"ok": False, "failure": Failure(Code.POLICY_REFUSED, reason).to_dict()})
        except (OSError, ValueError):
            pass

    def _answer(self, ctx: RequestContext, message: dict) -> dict:
        try:
            return self.handle(ctx, message)
        except Failure as failure:
            return {"ok": False, "failure": failure.to_dict()}
        except KeyError as err:
            return {"ok": False, "failure": Failure(
                Code.POLICY_REFUSED, f"malformed {ctx.op} request: the field {err} is missing").to_dict()}
        except (TypeError, ValueError, OverflowError, AttributeError, RecursionError) as err:
            return {"ok": False, "failure": Failure(
                Code.POLICY_REFUSED, f"malformed {ctx.op} request: {str(err)[:200]}").to_dict()}
        except Exception as err:  # a bug must answer, not hang the client
            log.exception("op=%s failed unexpectedly", ctx.op)
            return {"ok": False, "failure": Failure(Code.ENGINE_ERROR, f"agent error during {ctx.op}: {err}").to_dict()}


class ConnectionLimits:
    """How many connections the agent serves at once, in total and per uid.

    A launch holds its connection for the job's whole life, so the caps are
    generous; they bound what one user can hold (threads, fds) so that another
    user's hooks always find room.  A connection over a cap is answered at once
    with a REQUEUE refusal and closed, without a thread.
    """

    def __init__(self, total: int, per_uid: int) -> None:
        self.total = total
        self.per_uid = per_uid
        self._lock = threading.Lock()
        self._by_uid: dict[int, int] = {}
        self._count = 0
        self._refusals_logged: dict[int, tuple[float, int]] = {}   # uid -> (when logged, refused since)

    def acquire(self, uid: int) -> str | None:
        """None when admitted (release later), else why not."""
        with self._lock:
            if self._count >= self.total:
                return (f"the agent already serves {self._count} connections "
                        f"(CONDOR_DOCKER_MAX_CONNECTIONS = {self.total}): try again later")
            held = self._by_uid.get(uid, 0)
            if held >= self.per_uid:
                return (f"uid {uid} already holds {held} connections to the agent "
                        f"(CONDOR_DOCKER_MAX_CONNECTIONS_PER_UID = {self.per_uid}): try again later")
            self._by_uid[uid] = held + 1
            self._count += 1
            return None

    def release(self, uid: int) -> None:
        with self._lock:
            self._count -= 1
            left = self._by_uid.get(uid, 1) - 1
            if left > 0:
                self._by_uid[uid] = left
            else:
                self._by_uid.pop(uid, None)

    def held(self) -> int:
        with self._lock:
            return self._count

    def refusals_to_log(self, uid: int, now: float, every: float = 10.0) -> int:
        """How many refusals of `uid` to report now (0: stay quiet), so a flood cannot fill the log."""
        with self._lock:
            last, count = self._refusals_logged.get(uid, (0.0, 0))
            count += 1
            if now - last < every:
                self._refusals_logged[uid] = (last, count)
                return 0
            self._refusals_logged[uid] = (now, 0)
            return count


# -- the socket -------------------------------------------------------------------------
def prepare_socket_dir(directory: str) -> None:
    """Create the socket's directory root-owned 0755; refuse one anybody else could change."""
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755, exist_ok=True)
        os.chown(directory, 0, 0)
        os.chmod(directory, 0o755)
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{directory} is not a directory (a link?)")
    if info.st_uid != 0 or info.st_mode & 0o022:
        raise OSError(f"{directory} must be owned by root and writable by root alone "
                      f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})")


def bind_socket(path: str) -> socket.socket:
    """Bind the listening socket (mode 0666: anyone connects, each request is authorized)."""
    prepare_socket_dir(os.path.dirname(os.path.abspath(path)))
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            raise OSError(f"another agent already answers on {path}")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # a dead agent's socket
        finally:
            probe.close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(LISTEN_BACKLOG)
    return listener


def _turn_away(sock: socket.socket, reason: str) -> None:
    """Answer an over-limit connection without a thread: one line, never blocking, then close."""
    try:
        sock.setblocking(False)
        sock.send(encode({"ok": False, "failure": Failure(Code.AGENT_UNAVAILABLE, reason).to_dict()}))
    except OSError:
        pass
    finally:
        sock.close()


def _admit(agent: Agent, limits: ConnectionLimits, sock: socket.socket) -> None:
    """Give an accepted connection a thread, within the limits; the agent survives any failure here."""
    try:
        creds = peer_credentials(sock)
    except OSError:
        sock.close()
        return
    refusal = limits.acquire(creds[1])
    if refusal is not None:
        count = limits.refusals_to_log(creds[1], time.monotonic())
        if count:
            log.warning("op=- uid=%d pid=%d result=turned-away count=%d (%s)", creds[1], creds[0], count, refusal)
        _turn_away(sock, refusal)
        return

    def serve_one() -> None:
        try:
            agent.serve_connection(sock, creds)
        finally:
            limits.release(creds[1])

    try:
        threading.Thread(target=serve_one, daemon=True, name="condor_docker-conn").start()
    except RuntimeError as err:  # "can't start new thread": keep serving the others
        limits.release(creds[1])
        log.error("op=- uid=%d pid=%d result=no-thread (%s; %d threads live, %d connections): "
                  "raise the agent's thread/process limit or lower CONDOR_DOCKER_MAX_CONNECTIONS",
                  creds[1], creds[0], err, threading.active_count(), limits.held())
        _turn_away(sock, f"the agent cannot start a thread now ({err}): try again later")


def serve(agent: Agent, path: str, stop: threading.Event) -> None:
    """Accept until `stop`; each admitted connection gets its own (daemon) thread."""
    listener = bind_socket(path)
    limits = ConnectionLimits(agent.settings.max_connections, agent.settings.max_connections_per_uid)
    log.info("agent listening on %s (at most %d connections, %d per uid)", path, limits.total, limits.per_uid)
    try:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.5)
            if not ready:
                continue
            try:
                sock, _ = listener.accept()
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE):
                    log.error("cannot accept a connection: %s (out of file descriptors)", err)
                    time.sleep(0.1)
                continue
            _admit(agent, limits, sock)
    finally:
        listener.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        log.info("agent stopped listening on %s", path)


# -- command line -------------------------------------------------------------------------
def _overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, found, value = pair.partition("=")
        if not found or not name:
            raise SettingsError(f"--set {pair!r}: write KNOB=VALUE")
        overrides[name.strip()] = value
    return overrides


def _default_log() -> str | None:
    try:
        import htcondor2

        directory = htcondor2.param.get("LOG")
    except Exception:
        return None
    return os.path.join(str(directory), LOG_NAME) if directory else None


def setup_logging(path: str | None, foreground: bool) -> None:
    handlers: list[logging.Handler] = []
    if path and path != "-":
        handlers.append(logging.FileHandler(path))
    if foreground or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    package = logging.getLogger("condor_docker")
    package.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package.addHandler(handler)


def main_agent(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="condor_docker agent", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", help="the unix socket (default: CONDOR_DOCKER_AGENT_SOCKET)")
    parser.add_argument("--log", help=f"log file (default: $(LOG)/{LOG_NAME}, else stderr); - for stderr")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a knob of the HTCondor configuration (repeatable)")
    parser.add_argument("--foreground", action="store_true",
                        help="also log to stderr (the agent never forks; condor_master supervises it)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(None, _overrides(args.set))
    except SettingsError as err:
        print(f"condor_docker agent: {err}", file=sys.stderr)
        return EX_CONFIG
    setup_logging(args.log or _default_log(), args.foreground)
    path = args.socket or settings.agent_socket
    stop = threading.Event()
    for signum in (signals.SIGTERM, signals.SIGQUIT, signals.SIGINT):
        signals.signal(signum, lambda num, _frame: stop.set())
    agent = Agent(settings)
    agent.start()
    from .exec_op import install_sshd_template
    install_sshd_template(path)   # for condor_ssh_to_job (SSH_TO_JOB_SSHD_CONFIG_TEMPLATE)
    try:
        serve(agent, path, stop)
    except OSError as err:
        log.error("cannot serve on %s: %s", path, err)
        print(f"condor_docker agent: cannot serve on {path}: {err}", file=sys.stderr)
        return EX_SOCKET
    finally:
        agent.stop()
        logging.shutdown()
    # Leave now: connection threads still serving jobs must not run their cleanup
    # (which would remove the containers); the jobs survive and are reattached.
    os._exit(0)


main = main_agent
