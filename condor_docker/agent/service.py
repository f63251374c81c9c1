"""The agent's ops, with their dependencies: the op table and one connection's request/answer.

Ops: ping, machine_attrs, status, admin_status here; prepare, launch, reattach,
signal, suspend, resume, cleanup, cleanup_starter_job in `jobs.py`; exec in `exec_op.py`.  What each
request holds is declared in wire/ops.py: a handler receives its typed request,
never the raw message.  Every request is logged as one line (see server.py for
the socket loop around it).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Callable

from ..core.failures import Code, Failure
from ..core.logsafe import clean, field
from ..core.settings import Settings
from ..wire import ops
from ..wire.protocol import Connection, ProtocolError, close_fds, peer_credentials
from .context import RequestContext

log = logging.getLogger("condor_docker.agent")


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("condor_docker")
    except Exception:  # not installed (running from a checkout)
        return "0.1.0"


def advertised_networks(configured, present) -> str:
    """`DockerNetworks` as HTCondor's startd advertises it: one comma-separated string.

    condor_submit adds `StringListMember(My.DockerNetworkType, TARGET.DockerNetworks)`
    to a job that names an admin network; on a ClassAd list that is ERROR, so such a
    job would never match. Networks the engine does not have (when it said) are left out.
    """
    return ",".join(n for n in configured if not present or n in present)


# ops whose answer comes when a job or a pull ends: a restart in place does not wait for them
LONG_OPS = frozenset((ops.Launch.op, ops.Reattach.op, ops.Exec.op, ops.Prepare.op))


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
        # op name -> handler of its typed request (wire/ops.py declares one per op)
        self._ops: dict[str, Callable[[RequestContext, Any], dict]] = {
            ops.Ping.op: self.ping, ops.MachineAttrs.op: self.machine_attrs, ops.Status.op: self.jobs.status,
            ops.Prepare.op: self.jobs.prepare, ops.Launch.op: self.jobs.launch,
            ops.Reattach.op: self.jobs.reattach, ops.Signal.op: self.jobs.signal,
            ops.Suspend.op: self.jobs.suspend, ops.Resume.op: self.jobs.resume,
            ops.Cleanup.op: self.jobs.cleanup, ops.CleanupStarterJob.op: self.jobs.cleanup_starter_job,
            ops.AdminStatus.op: self.admin_status,
            ops.Exec.op: ExecOp(self.engine, self.settings).run,
        }
        assert set(self._ops) == set(ops.REQUESTS), "every op declared in wire/ops.py has a handler"
        self._quick = 0   # connections not yet answered, but for the ops that last as long as a job or a pull
        self._quick_done = threading.Condition()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self.jobs.recover()
        self.health.start()
        self.reaper.start()

    def stop(self) -> None:
        """Stop the background threads; running containers are left alone (see module doc)."""
        self.reaper.stop()
        self.health.stop()

    def drain_quick(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until every connection but the long ones has its answer.

        Before a restart in place (condor_reconfig): a ping or status accepted just
        before the exec would otherwise lose its connection mid-answer.  The long ops
        (LONG_OPS) are left: their clients reattach to the next image.
        """
        with self._quick_done:
            return self._quick_done.wait_for(lambda: self._quick == 0, timeout)

    def _quick_ended(self) -> None:
        with self._quick_done:
            self._quick -= 1
            self._quick_done.notify_all()

    # -- simple ops ------------------------------------------------------------------
    def ping(self, ctx: RequestContext, request: ops.Ping) -> dict:
        state = self.health.current()
        return ops.PingReply(package_version(), state.healthy, state.reason).to_message()

    def machine_attrs(self, ctx: RequestContext, request: ops.MachineAttrs) -> dict:
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
        if state.engine:
            attrs["CondorDockerEngine"] = state.engine
        if not state.healthy:
            attrs["DockerOfflineReason"] = state.reason or "the Docker engine is not usable"
        attrs["DockerNetworks"] = advertised_networks(self.settings.networks, state.networks)
        for volume in self.settings.volumes:
            attrs[f"HasDockerVolume{volume.name}"] = True
        if state.healthy:
            try:
                attrs.update(self.cache.advertised())
            except Failure as err:
                log.warning("cannot list the image cache: %s", err.reason)
        return ops.MachineAttrsReply(attrs).to_message()

    def admin_status(self, ctx: RequestContext, request: ops.AdminStatus) -> dict:
        """`condor_docker status`: health, jobs, containers, pulls, cache (see agent/status.py)."""
        from .status import gather
        jobs = self.jobs.status(ctx, ops.Status())["jobs"]
        return gather(health=self.health, jobs=jobs, engine=self.engine, cache=self.cache, uid=ctx.uid)

    # -- one request -----------------------------------------------------------------
    def handle(self, ctx: RequestContext, message: dict) -> dict:
        """The op's typed request from `message` (refused naming the field), handed to its handler."""
        handler = self._ops.get(ctx.op)
        if handler is None:   # named, so that a newer client can fall back to an older op
            return ops.failure_reply(Failure(Code.POLICY_REFUSED, f"unknown op {ctx.op!r}").to_dict(),
                                     error=ops.UNKNOWN_OP)
        try:
            request = ops.REQUESTS[ctx.op].from_message(message)
        except ops.BadRequest as err:
            raise Failure(Code.POLICY_REFUSED, f"malformed {ctx.op} request: {str(err)[:300]}") from None
        return handler(ctx, request)

    def serve_connection(self, sock: socket.socket, creds: tuple[int, int, int] | None = None) -> None:
        connection = Connection(sock)
        fds: list[int] = []
        ctx = None
        pidfd = -1
        with self._quick_done:
            self._quick += 1
        quick = True
        try:
            pid, uid, gid = creds or peer_credentials(sock)
            pidfd = _pidfd(pid)
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
            op = message.get("op", "")   # a peer's: never str() of a deep list, never unbounded
            if isinstance(op, str) and op in LONG_OPS:   # a peer may send any JSON here
                quick = False
                self._quick_ended()
            ctx = RequestContext(op[:64] if isinstance(op, str) else f"<{type(op).__name__}>", pid, uid, gid,
                                 connection, fds, pidfd=pidfd)
            pidfd = -1   # the context closes it
            reply = self._answer(ctx, message)
            try:
                connection.send(reply)
            except (OSError, ValueError):
                pass
            result = "ok" if reply.get("ok") else f"failed code={reply['failure']['code']} " \
                                                      f"reason={str(reply['failure']['reason'])[:1024]!r}"
            # every value a peer chose is field()ed: a newline must not start a line of its own, and a
            # space or `=` must not start a field of its own (`op=status uid=0 result=ok` stays quoted)
            extra = "".join(f" {field(k, 64)}={field(v)}" for k, v in ctx.extra.items())
            log.info("op=%s uid=%d pid=%d job=%s container=%s result=%s%s", field(ctx.op), uid, pid,
                     field(ctx.job), field(ctx.container), result, extra)
        finally:
            close_fds(fds)
            if ctx is not None:
                ctx.close()
            if pidfd >= 0:
                os.close(pidfd)
            connection.close()
            if quick:
                self._quick_ended()

    @staticmethod
    def _refuse_quietly(connection: Connection, reason: str) -> None:
        """A clean refusal for a malformed request (the client may be gone already)."""
        try:
            connection.sock.settimeout(1.0)
            connection.send(ops.failure_reply(Failure(Code.POLICY_REFUSED, reason).to_dict()))
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
            log.exception("op=%s failed unexpectedly", clean(ctx.op))
            return {"ok": False, "failure": Failure(Code.ENGINE_ERROR, f"agent error during {ctx.op}: {err}").to_dict()}


def _pidfd(pid: int) -> int:
    """A pidfd for the peer (Linux >= 5.3), so that a later /proc read can be checked to be its own."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):   # no pidfd_open, or the peer already gone
        return -1
