"""`condor_docker agent`: the trusted daemon that alone talks to the Docker engine.

It runs as root (started by condor_master), listens on a unix socket that
anyone may connect to (mode 0666) and authorizes each request by the peer's
kernel credentials (SO_PEERCRED), never by message content.  One thread per
connection, one request per connection, within caps in total and per uid
(`ConnectionLimits`); the whole request must arrive within
CONDOR_DOCKER_REQUEST_TIMEOUT; fds that come with a request are always
closed.  Every request is logged as one line:

    op=launch uid=1001 pid=4242 job=12.0 container=HTCJob_12_0_slot1_1 result=ok

The ops are in service.py (the op table), jobs.py and exec_op.py; the socket's
directory in rundir.py.

SIGHUP (condor_reconfig) re-reads the knobs and restarts in place only when one
changed (reconfig.py).  Shutdown (SIGTERM, SIGQUIT, SIGINT, or the parent that
started it exiting) stops accepting, removes the socket and exits *without*
touching running containers: condor_master restarts the agent,
the running jobs' launchers reconnect with `reattach`, and the reaper removes
what nobody reattached.  At start the agent recovers: it lists its managed
containers and leaves the running ones for their launchers.
"""
from __future__ import annotations

import errno
import logging
import os
import resource
import select
import signal as signals
import socket
import sys
import threading
import time

from ..core.argparsing import Parser
from ..core.failures import Code, Failure
from ..core.logsafe import SafeLines
from ..core.settings import (
    EX_USAGE,
    OverrideError,
    SettingsError,
    htcondor_text_lookup,
    settings_from_command_line,
)
from ..host.logfiles import LogConfigError, Rotation, rotating_handler
from ..wire.protocol import (
    encode,
    peer_credentials,
)
from .reconfig import Reconfig, inherited_listener, restart_in_place
from .rundir import bind_socket
from .service import Agent

log = logging.getLogger("condor_docker.agent")

EX_CONFIG = 78       # a knob has a value we cannot use (named in the message)
EX_SOCKET = 71       # the socket (or its directory) cannot be used safely
EX_CANTCREAT = 73    # the log file cannot be written
LOG_NAME = "CondorDockerLog"


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


def parent_gone(parent: int | None) -> bool:
    """Whether the process that started the agent has exited (the agent was given to another parent).

    condor_master starts the agent and restarts it; a master that is killed or
    dies stops nobody, and an agent that outlived its master (a test pool torn
    down, a master killed -9) went on holding the engine for a pool that was no
    longer there.  An agent started by PID 1 (systemd) has no parent to lose.
    """
    return parent is not None and parent > 1 and os.getppid() != parent


RESTART_DRAIN_S = 5.0   # what a restart in place waits for the quick requests under way


def serve(agent: Agent, path: str, stop: threading.Event, parent: int | None = None,
          listener: socket.socket | None = None, keep: threading.Event | None = None) -> socket.socket | None:
    """Accept until `stop`, or until `parent` (a pid) is gone; each admitted connection gets its own thread.

    `listener`: a socket handed over by a restart in place (else one is bound).  When
    `keep` is set at the stop, the listener is returned open and its path left in place
    (for the next image of the agent, agent/reconfig.py); otherwise it is closed and removed.
    """
    listener = listener or bind_socket(path)
    limits = ConnectionLimits(agent.settings.max_connections, agent.settings.max_connections_per_uid)
    log.info("agent listening on %s (at most %d connections, %d per uid)", path, limits.total, limits.per_uid)
    try:
        while not stop.is_set():
            ready, _, _ = select.select([listener], [], [], 0.5)
            if parent_gone(parent):
                log.warning("the agent's parent (pid %d, condor_master) has exited: stopping, as on SIGTERM "
                            "(running jobs are left for their launchers)", parent)
                break
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
        if keep is not None and keep.is_set():
            log.info("agent hands its socket %s over to its next image", path)
            return listener   # noqa: B012 - the stop is the handover, nothing to re-raise
        listener.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        log.info("agent stopped listening on %s", path)


def raise_fd_limit() -> tuple[int, int]:
    """The soft fd limit up to the hard one; (before, after).

    Each running job holds about ten fds in the agent (its connection, its
    three stdio fds and the relays' copies, its scratch dir, its pidfd, the
    attach, wait and stats connections to the engine), so the soft limit of
    1024 that condor_master often passes on is reached near 100 jobs.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            return soft, wanted
        except (ValueError, OSError):
            pass
    return soft, soft


# -- command line -------------------------------------------------------------------------
def _default_log() -> str | None:
    try:
        import htcondor2

        directory = htcondor2.param.get("LOG")
    except Exception:
        return None
    return os.path.join(str(directory), LOG_NAME) if directory else None


def setup_logging(path: str | None, foreground: bool) -> None:
    """Log to `path`, rotated as HTCondor rotates daemon logs (host/logfiles.py), and/or stderr."""
    handlers: list[logging.Handler] = []
    if path and path != "-":
        handlers.append(rotating_handler(path, Rotation.from_config("CONDOR_DOCKER", htcondor_text_lookup())))
    if foreground or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    package = logging.getLogger("condor_docker")
    package.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(SafeLines())   # no message may hold a line break of a peer's making
        package.addHandler(handler)


def main_agent(argv: list[str] | None = None) -> int:
    parent = os.getppid()   # first: a parent that exits while the agent starts is noticed too
    parser = Parser(prog="condor_docker agent", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", help="the unix socket (default: CONDOR_DOCKER_AGENT_SOCKET)")
    parser.add_argument("--log", help=f"log file (default: $(LOG)/{LOG_NAME}, else stderr); - for stderr")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a knob of the HTCondor configuration (repeatable)")
    parser.add_argument("--foreground", action="store_true",
                        help="also log to stderr (the agent never forks; condor_master supervises it)")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_command_line(args.set)
    except OverrideError as err:
        print(f"condor_docker agent: {err}", file=sys.stderr)
        return EX_USAGE
    except SettingsError as err:
        print(f"condor_docker agent: {err}", file=sys.stderr)
        return EX_CONFIG
    log_path = args.log or _default_log()
    try:
        setup_logging(log_path, args.foreground)
    except OSError as err:
        print(f"condor_docker agent: cannot write the log {log_path}: {err.strerror}; "
              f"give --log a writable file (or - for stderr), or fix HTCondor's LOG", file=sys.stderr)
        return EX_CANTCREAT
    except LogConfigError as err:
        print(f"condor_docker agent: {err}", file=sys.stderr)
        return EX_CONFIG
    path = args.socket or settings.agent_socket
    stop = threading.Event()
    for signum in (signals.SIGTERM, signals.SIGQUIT, signals.SIGINT):
        signals.signal(signum, lambda num, _frame: stop.set())
    reconfig = Reconfig(args.set, settings)
    signals.signal(signals.SIGHUP, lambda num, _frame: reconfig.hup.set())   # condor_reconfig
    listener = inherited_listener(path)
    before, after = raise_fd_limit()
    if after != before:
        log.info("file descriptor limit raised from %d to %d", before, after)
    agent = Agent(settings)
    agent.start()
    from .exec_op import install_sshd_template
    install_sshd_template(path)   # for condor_ssh_to_job (SSH_TO_JOB_SSHD_CONFIG_TEMPLATE)
    threading.Thread(target=reconfig.watch, args=(stop,), daemon=True, name="condor_docker-reconfig").start()
    try:
        kept = serve(agent, path, stop, parent, listener, keep=reconfig.restart)
        if kept is not None and not agent.drain_quick(RESTART_DRAIN_S):
            log.warning("restart in place: a request still unanswered after %.0f s is cut", RESTART_DRAIN_S)
    except OSError as err:
        log.error("cannot serve on %s: %s", path, err)
        print(f"condor_docker agent: cannot serve on {path}: {err}", file=sys.stderr)
        return EX_SOCKET
    finally:
        agent.stop()
        logging.shutdown()
    if kept is not None:
        restart_in_place(kept, path)
    # Leave now: connection threads still serving jobs must not run their cleanup
    # (which would remove the containers); the jobs survive and are reattached.
    os._exit(0)


main = main_agent
