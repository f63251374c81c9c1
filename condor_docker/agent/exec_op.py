"""The agent's `exec` op: run a command inside a job's running container (condor_ssh_to_job).

The sshd that HTCondor's starter runs for `condor_ssh_to_job` runs as the job's
user on the host; its session runs `condor_docker ssh-shell` (starter/ssh_shell.py),
which asks for this op, passing its stdin, stdout and stderr (SCM_RIGHTS) the
way the launcher does.  The agent then `docker exec`s the command and relays
the streams until the command ends, and answers with its exit code.

Trust: the request names only a scratch dir, which the peer may lie about.
The container is looked up among the *running* containers labelled with the
peer's own uid (from SO_PEERCRED) and that scratch dir, and re-checked with
`policy.check_container_owner`; so a user reaches only containers of its own
jobs.  What runs, and as whom, comes from the container, not from the request:
the container's own user (uid:gid, never root, and it must be the peer's uid),
its working dir and environment, never privileged, under the container's
limits, capabilities and no-new-privileges.  Only the command, a terminal
(yes/no, size, TERM) and the streams come from the peer.

Wire (declared in wire/ops.py), after the request ops.Exec {"op": "exec",
"scratch_dir", "argv", "tty", "rows", "cols", "term"} with fds [stdin, stdout, stderr]:
    agent -> client  {"event": "started", "container": NAME}
    client -> agent  {"resize": [rows, cols]}      (any number, tty only)
    agent -> client  {"ok": true, "exit_code": N}  (or a failure)
When the client goes away, the exec stream is closed: with a terminal the
command gets SIGHUP, without one its stdin ends.
"""
from __future__ import annotations

import logging
import os
import select
import shlex
import socket
import sys
import threading
import time
from typing import Any

from ..core.failures import Code, Failure
from ..core.labels import (
    CLUSTER_LABEL,
    PROC_LABEL,
    SCRATCH_DIR_LABEL,
    UID_LABEL,
    own_containers_filter,
)
from ..core.settings import Settings
from ..engine.client import Engine
from ..engine.streams import frames
from ..host.fdio import write_all
from ..wire import ops
from ..wire.protocol import ProtocolError
from . import policy
from .context import RequestContext
from .scratch import check_scratch_path

log = logging.getLogger("condor_docker.agent_exec")

_EXIT_CODE_WAIT = 5.0


def check_exec_user(peer_uid: int, name: str, user: str) -> str:
    """The container's own `uid:gid`, if it is the peer's uid and not root."""
    uid, _, gid = str(user or "").partition(":")
    if uid != str(peer_uid) or uid == "0" or gid == "0":
        raise policy.refuse(f"container {name} runs as {user!r}, not as uid {peer_uid}: refused")
    return user


class ExecOp:
    """`exec`: find the peer's running container by scratch dir, run argv in it, relay, exit code."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def run(self, ctx: RequestContext, request: ops.Exec) -> dict:
        policy.check_job_peer(ctx.uid, ctx.gid)
        if len(ctx.fds) != 3:
            raise policy.refuse(f"exec needs the session's stdin, stdout and stderr (got {len(ctx.fds)} fds)")
        argv, tty, size, term = list(request.argv), request.tty, request.size, request.term
        container_id, name, user, workdir = self._find(ctx, request.scratch_dir)
        exec_id = self.engine.exec_create(container_id, argv, user=user, workdir=workdir, tty=tty,
                                          environment={"TERM": term} if term else {}, name=name)
        stream = self.engine.exec_attach(exec_id, tty, name)
        ctx.extra["tty"] = "yes" if tty else "no"
        ctx.send_event(ops.Started(name).to_message())
        session = _Session(self.engine, exec_id, stream, ctx, tty)
        if size is not None:
            session.resize(*size)
        session.relay()
        code = self._exit_code(exec_id)
        ctx.extra["exit"] = code
        return ops.ExecReply(code).to_message()

    def _find(self, ctx: RequestContext, scratch_dir: Any) -> tuple[str, str, str, str | None]:
        """(id, name, user, workdir) of the one running container of this uid for this scratch dir."""
        if not isinstance(scratch_dir, str) or not os.path.isabs(scratch_dir):
            raise policy.refuse(f"exec needs the job's scratch dir as an absolute path, not {scratch_dir!r}")
        scratch_dir = os.path.normpath(scratch_dir)
        check_scratch_path(scratch_dir, self.settings)   # under the execute dirs, in a starter's layout
        found = self.engine.managed_containers(own_containers_filter(
            self.settings.agent_id, (UID_LABEL, ctx.uid), (SCRATCH_DIR_LABEL, scratch_dir)))
        live = [c for c in found if c.get("State") in ("running", "paused")]
        if not live:
            raise Failure(Code.JOB_INTERRUPTED, f"no running container of uid {ctx.uid} for scratch dir "
                                                f"{scratch_dir}: the job's container has not started yet or "
                                                "has ended")
        if len(live) > 1:
            raise policy.refuse(f"{len(live)} running containers claim scratch dir {scratch_dir}")
        details = self.engine.inspect_details(live[0]["Id"])
        if details is None:
            raise Failure(Code.JOB_INTERRUPTED, f"the container of scratch dir {scratch_dir} has just ended")
        name = str(details.get("Name", "")).lstrip("/")
        config = details.get("Config") or {}
        ctx.container = name
        labels = config.get("Labels") or {}
        ctx.job = f"{labels.get(CLUSTER_LABEL, '?')}.{labels.get(PROC_LABEL, '?')}"
        policy.check_container_owner(ctx.uid, name, labels)
        policy.check_same_job(ctx.pid, ctx.uid, name, labels, require_starter=self.settings.require_starter)
        policy.check_peer_still_there(ctx)
        if ctx.uid == 0 or labels.get(SCRATCH_DIR_LABEL) != scratch_dir:
            raise policy.refuse(f"container {name} is not the job of scratch dir {scratch_dir}")
        if (details.get("State") or {}).get("Paused"):
            raise Failure(Code.JOB_INTERRUPTED, f"container {name} is suspended: try again when the job resumes")
        user = check_exec_user(ctx.uid, name, config.get("User", ""))
        return details["Id"], name, user, config.get("WorkingDir") or None

    def _exit_code(self, exec_id: str) -> int:
        """The command's exit code; the engine may record it a moment after the stream ends."""
        deadline = time.monotonic() + _EXIT_CODE_WAIT
        while True:
            state = self.engine.exec_inspect(exec_id)
            if not state.get("Running") and state.get("ExitCode") is not None:
                return int(state["ExitCode"])
            if time.monotonic() > deadline:
                raise Failure(Code.JOB_INTERRUPTED, "the command's stream ended but the engine reports it running")
            time.sleep(0.05)


class _Session:
    """The relays of one exec: session stdin -> exec, exec -> session stdout/stderr, resizes."""

    def __init__(self, engine: Engine, exec_id: str, stream: Any, ctx: RequestContext, tty: bool) -> None:
        self.engine = engine
        self.exec_id = exec_id
        self.stream = stream
        self.raw: socket.socket = getattr(stream, "_sock", stream)
        self.ctx = ctx
        self.tty = tty
        self.done = threading.Event()

    def resize(self, rows: int, cols: int) -> None:
        try:
            self.engine.exec_resize(self.exec_id, rows, cols)
        except Failure as failure:  # the command may have just ended
            log.debug("resize of exec in %s failed: %s", self.ctx.container, failure.reason)

    def relay(self) -> None:
        """Until the command's output ends; the client leaving ends the exec stream."""
        threading.Thread(target=self._input, daemon=True, name="exec-stdin").start()
        threading.Thread(target=self._control, daemon=True, name="exec-control").start()
        try:
            self._output()
        finally:
            self.done.set()
            try:   # wake the control thread's read: a client that stays connected must not keep it
                self.ctx.connection.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def _output(self) -> None:
        stdout, stderr = self.ctx.fds[1], self.ctx.fds[2]
        try:
            if self.tty:
                while True:
                    data = self.raw.recv(65536)
                    if not data:
                        break
                    write_all(stdout, data)
            else:
                for kind, data in frames(self.stream):
                    write_all(stderr if kind == 2 else stdout, data)
        except (OSError, ValueError) as err:
            log.info("exec output relay of %s ended: %s", self.ctx.container, err)
        finally:
            _close(self.stream)

    def _input(self) -> None:
        """Session stdin -> the command; EOF half-closes, so `cat > file` and sftp see their end."""
        stdin = self.ctx.fds[0]
        poller = select.poll()
        poller.register(stdin, select.POLLIN | select.POLLHUP | select.POLLERR)
        try:
            while not self.done.is_set():
                events = poller.poll(200)
                if not events:
                    continue
                if any(flag & select.POLLNVAL for _, flag in events):
                    break
                chunk = os.read(stdin, 65536)
                if not chunk:
                    break
                self.raw.sendall(chunk)
        except OSError as err:  # EIO: the terminal closed
            log.debug("exec input relay of %s ended: %s", self.ctx.container, err)
        finally:
            if not self.done.is_set():
                try:
                    self.raw.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _control(self) -> None:
        """Resize requests from the client; its leaving closes the exec stream."""
        connection = self.ctx.connection
        while not self.done.is_set():
            try:
                message, _ = connection.receive()
            except (OSError, ProtocolError):
                message = None
            if message is None:
                if not self.done.is_set():
                    log.info("exec client pid %d of %s went away: closing the command's stream",
                             self.ctx.pid, self.ctx.container)
                    try:
                        self.raw.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if self.tty:
                try:
                    resize = ops.Resize.from_message(message)
                except ops.BadRequest:
                    continue
                self.resize(resize.rows, resize.cols)


def _close(stream: Any) -> None:
    try:
        stream.close()
    except OSError:
        pass


def own_entry_point() -> str:
    """The command line that runs this condor_docker (argv[0], or this interpreter with -m)."""
    argv0 = os.path.abspath(sys.argv[0])
    if os.path.isfile(argv0) and os.access(argv0, os.X_OK) and not argv0.endswith(".py"):
        return shlex.quote(argv0)
    return f"{shlex.quote(sys.executable)} -m condor_docker.cli"


def install_sshd_template(socket_path: str) -> str | None:
    """Write the sshd template for condor_ssh_to_job beside the socket; its path, or None (logged).

    The execute config points SSH_TO_JOB_SSHD_CONFIG_TEMPLATE at
    $DIRNAME(CONDOR_DOCKER_AGENT_SOCKET), so the template always names this
    agent's socket and entry point.  The directory is root's alone
    (`prepare_socket_dir`); the file is replaced atomically, never followed.
    """
    from ..core.configfiles import SSHD_TEMPLATE_NAME, sshd_config_template
    from .rundir import prepare_socket_dir

    directory = os.path.dirname(os.path.abspath(socket_path))
    path = os.path.join(directory, SSHD_TEMPLATE_NAME)
    text = sshd_config_template(own_entry_point(), shlex.quote(socket_path))
    partial = path + ".partial"
    try:
        prepare_socket_dir(directory)
        try:
            os.unlink(partial)
        except FileNotFoundError:
            pass
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.fchmod(fd, 0o644)
            write_all(fd, text.encode())
        finally:
            os.close(fd)
        os.replace(partial, path)
    except OSError as err:
        log.error("cannot write the condor_ssh_to_job sshd template %s: %s; condor_ssh_to_job into "
                  "docker jobs will fail until it exists", path, err)
        return None
    log.info("wrote the condor_ssh_to_job sshd template %s", path)
    return path
