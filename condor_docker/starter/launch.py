"""`condor_docker launch`: the job process the starter runs in place of the container.

It runs as the job's user with cwd = the scratch dir and the job's stdin/stdout/
stderr, and asks the agent to run the container, passing those three fds
(SCM_RIGHTS) so the container's output goes straight into the job's files.  It
imports neither docker nor htcondor2 (startup budget, and a job's user must never
hold the engine).

Signals from the starter are relayed on a separate connection.  The starter
soft-kills the job process with the job's own signal (KillSig for a vacate,
RemoveKillSig for condor_rm, HoldKillSig for condor_hold; SIGTERM when unset;
names or numbers in .job.ad), so the launcher catches those as well as
SIGTERM/SIGINT/SIGQUIT/SIGHUP and relays the very signal it received ->
`signal` (grace = the job's JobMaxVacateTime, or the agent's default); the
starter's hard kill (SIGKILL, uncatchable) ends the launcher and the agent,
which watches it, kills the container.  SIGTSTP -> `suspend`, SIGCONT ->
`resume`; a SIGSTOP (how the starter suspends a job without a freezer cgroup)
stops this process, so the agent watches its state and pauses the container
itself.  A signal that arrives before the container exists closes the launch
connection instead; the agent then abandons the launch and removes anything
it created.

If the agent goes away while the job runs (agent restart), the container keeps
running; the launcher retries `reattach` with backoff for up to 60 s.  Output the
job writes while no agent is attached is lost (the engine keeps no log).

Exit status, what the starter records as the job's ExitCode / ExitBySignal:
    0..255        the job's own exit code
    killed by N   the container was killed by signal N: the launcher kills itself
                  with N, so the starter sees ExitBySignal = true, ExitSignal = N
    137           the container went over its memory limit (plus one stderr line
                  and ChirpCondorDockerHoldReason/HoldSubCode=102/OOM=true)
    1  EX_HOLD    the job could not start for a reason a person must fix (bad
                  image, refused network, ...): stderr line + Chirp hold attributes
    75 EX_TEMPFAIL the job could not start or finish because of this machine (agent
                  or engine unavailable, agent lost for over 60 s): stderr line +
                  ChirpCondorDockerRequeueReason; an access-point transform may
                  requeue on it
"""
from __future__ import annotations

import errno
import io
import os
import queue
import signal as signals
import socket
import sys
import threading
import time
from typing import Any, Mapping

from ..core import exitcodes
from ..core.argparsing import Parser
from ..core.chirpnames import HOST_PORT_SUFFIX, SERVICE_NAME
from ..core.chirpnames import USAGE as USAGE_ATTRS
from ..core.failures import Code, Failure
from ..host import fdio
from ..wire import ops
from ..wire.protocol import AgentClient, AgentUnavailable, Connection, ProtocolError
from ..wire.socketpath import default_help
from . import chirp

EX_HOLD = exitcodes.HELD          # core/exitcodes.py: one table for every command
EX_TEMPFAIL = exitcodes.TEMPFAIL
EX_OOM = exitcodes.OOM
REATTACH_FOR = 60.0
RELAYED = (signals.SIGTERM, signals.SIGINT, signals.SIGQUIT, signals.SIGHUP)
KILL_SIGNAL_ATTRS = ("KillSig", "RemoveKillSig", "HoldKillSig")
# never relayed as a kill: uncatchable, or the starter's suspend/continue, or harmless noise
_NOT_KILL_SIGNALS = {signals.SIGKILL, signals.SIGSTOP, signals.SIGTSTP, signals.SIGCONT, signals.SIGCHLD,
                     signals.SIGWINCH, signals.SIGURG, signals.SIGPIPE}


class LostAgent(Exception):
    """The agent connection ended before the final answer."""


def _say(text: str) -> None:
    print(f"condor_docker: {text}", file=sys.stderr, flush=True)


def signal_number(value: Any) -> int | None:
    """A job ad's signal value (HTCondor accepts 10, "SIGUSR1" or "USR1") as a number; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value < signals.NSIG else None
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip().upper()
    if name.isdigit():
        return signal_number(int(name))
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signals.Signals[name])
    except KeyError:
        return None


def kill_signals(job_ad: Any) -> tuple[int, ...]:
    """Every signal the starter may soft-kill this job with: RELAYED plus KillSig/RemoveKillSig/HoldKillSig."""
    wanted = list(RELAYED)
    for attr in KILL_SIGNAL_ATTRS:
        try:
            value = job_ad.eval(attr) if job_ad is not None and attr in job_ad else None
        except Exception:  # noqa: BLE001 -- an expression we cannot evaluate is no signal
            value = None
        signum = signal_number(value)
        if signum is not None and signum not in wanted and signum not in _NOT_KILL_SIGNALS:
            wanted.append(signum)
    return tuple(wanted)


def _read_job_ad(env: dict[str, str]) -> Any:
    """The job's own .job.ad ($_CONDOR_JOB_AD), None when absent or unreadable (the agent reads it too).

    Opened non-blocking, not through a link of its own, and read only as a plain file of an ad's
    size (host/fdio.py, the agent's rule): a FIFO or a link to /dev/zero would hang the
    launcher, where the agent refuses them at once.  That is a Failure (a hold), as the agent's.
    """
    path = env.get("_CONDOR_JOB_AD")
    if not path:
        return None
    try:
        fd = os.open(path, fdio.READ_FLAGS)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Failure(Code.POLICY_REFUSED, f"the job ad {path} must be a plain file, not a symlink") from None
        return None
    try:
        text = fdio.read_plain_file(fd).decode("utf-8", errors="replace")
    except fdio.NotPlainFile as why:
        raise Failure(Code.POLICY_REFUSED, f"the job ad {path} {why}") from None
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        from ..core import ads

        return ads.parse_ad(text, "job ad")
    except Failure:
        return None


def _job_grace(job_ad: Any) -> float | None:
    """JobMaxVacateTime from the job ad, if any (the soft-kill grace the job asked for)."""
    if job_ad is None:
        return None
    try:
        from ..core import ads

        value = ads.get_int(job_ad, "JobMaxVacateTime")
    except Failure:
        return None
    return float(value) if value is not None else None


class Launcher:
    """One job: start it through the agent, relay signals, reattach, turn the result into an exit."""

    def __init__(self, socket_path: str | None, env: dict[str, str]) -> None:
        self.client = AgentClient(socket_path, timeout=30.0)
        self.env = env
        self.scratch_dir = env.get("_CONDOR_SCRATCH_DIR") or os.getcwd()
        self.refused: Failure | None = None   # the job ad cannot be read safely: run() holds the job
        try:
            job_ad = _read_job_ad(env)
        except Failure as failure:
            job_ad, self.refused = None, failure
        self.grace = _job_grace(job_ad)
        self.kill_signals = kill_signals(job_ad)
        chirp.clear_stale_marks(job_ad, stderr=io.StringIO())   # a courtesy: never fatal, never noisy
        self.container: str | None = None
        self.services: dict[str, int] = {}     # container_service_names -> host port, once started
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # put() is safe in signal handlers
        self._connection: Connection | None = None
        self._abort_signal: int | None = None
        self._done = threading.Event()

    # -- signals -----------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for signum in self.kill_signals:
            signals.signal(signum, self._on_signal)
        signals.signal(signals.SIGTSTP, self._on_signal)
        signals.signal(signals.SIGCONT, self._on_signal)
        threading.Thread(target=self._relay, name="signal-relay", daemon=True).start()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._events.put(signum)

    def _relay(self) -> None:
        # Python runs handlers in the main thread only; a signal the kernel hands to
        # this thread would wait until the main thread's recv() returns (never, for
        # a running job).  Blocking them here makes the kernel pick the main thread.
        signals.pthread_sigmask(signals.SIG_BLOCK, set(self.kill_signals) | {signals.SIGTSTP, signals.SIGCONT})
        while not self._done.is_set():
            signum = self._events.get()
            if signum is None:
                return
            if self.container is None:
                if signum in self.kill_signals:
                    self._abort_before_start(signum)
                continue
            self._send_control(signum)

    def _abort_before_start(self, signum: int) -> None:
        """No container yet: end the launch connection; the agent abandons the launch."""
        self._abort_signal = signum
        connection = self._connection
        if connection is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _send_control(self, signum: int) -> None:
        request: ops.Request
        if signum == signals.SIGTSTP:
            request = ops.Suspend(self.container)
        elif signum == signals.SIGCONT:
            request = ops.Resume(self.container)
        else:
            request = ops.Signal(self.container, int(signum), self.grace)
        for attempt in range(int(REATTACH_FOR)):
            try:
                reply = self.client.call(request)
                if not reply.get("ok"):
                    _say(f"the agent refused {request.op} of {self.container}: {reply.get('failure')}")
                return
            except AgentUnavailable:
                if self._done.wait(1.0):  # the agent restarts; the job may be reattached soon
                    return

    # -- the job -------------------------------------------------------------------
    def _follow(self, connection: Connection) -> dict:
        while True:
            try:
                message, _ = connection.receive()
            except (OSError, ProtocolError) as err:
                raise LostAgent(str(err)) from err
            if message is None:
                raise LostAgent("the agent closed the connection")
            if message.get("event") == "started":
                self.container = str(message.get("container"))
            if message.get("event") == "services":
                self.services = publish_services(message.get("ports"), self.env)
            if "ok" in message:
                return message

    def _stream(self, request: ops.Request) -> dict:
        connection = self.client.connect()
        connection.sock.settimeout(None)
        self._connection = connection
        try:
            if self._abort_signal is not None:
                raise LostAgent("stopped before the job started")
            try:
                connection.send(request.to_message(), fds=[0, 1, 2])
            except OSError as err:
                raise LostAgent(str(err)) from err
            return self._follow(connection)
        finally:
            self._connection = None
            connection.close()

    def _reattach(self, why: str) -> dict:
        """The agent went away mid-job: reconnect to the same container for up to 60 s."""
        _say(f"lost the agent while {self.container} runs ({why}); reattaching")
        deadline = time.monotonic() + REATTACH_FOR
        delay = 0.5
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            try:
                return self._stream(ops.Reattach(self.container))
            except (AgentUnavailable, LostAgent) as err:
                why = str(err)
        raise LostAgent(f"could not reattach to {self.container} within {REATTACH_FOR:.0f} s: {why}")

    def run(self) -> int:
        if self.refused is not None:
            return report_failure(self.refused)
        try:
            try:
                final = self._stream(ops.Launch(self.scratch_dir, dict(self.env)))
            except LostAgent as err:
                if self._abort_signal is not None:
                    return _die_by_signal(self._abort_signal)
                if self.container is None:
                    return report_failure(Failure(Code.AGENT_UNAVAILABLE,
                                                  f"lost the condor_docker agent before the job started: {err}"))
                final = self._reattach(str(err))
        except AgentUnavailable as err:
            return report_failure(Failure(Code.AGENT_UNAVAILABLE, str(err)))
        except LostAgent as err:
            return report_failure(Failure(Code.JOB_INTERRUPTED, str(err)))
        finally:
            self._done.set()
            self._events.put(None)
            if self.services:   # nobody answers there any more (HTCondor: undefined after exit)
                chirp.set_delayed({f"{name}{HOST_PORT_SUFFIX}": chirp.UNDEFINED for name in self.services},
                                  stderr=io.StringIO())
        return finish(final)


def publish_services(ports: Any, env: Mapping[str, str]) -> dict[str, int]:
    """Each container service's host port as <name>_HostPort: in the schedd's job ad (a delayed
    Chirp attribute: the shipped config adds *_HostPort to CHIRP_DELAYED_UPDATE_PREFIX) and in
    the job's own .job.ad, where HTCondor's docker universe puts it too."""
    if not isinstance(ports, dict):
        return {}
    services = {name: port for name, port in ports.items()
                if isinstance(name, str) and SERVICE_NAME.match(name) and isinstance(port, int) and 0 < port < 65536}
    if not services:
        return {}
    chirp.set_delayed({f"{name}{HOST_PORT_SUFFIX}": port for name, port in services.items()}, stderr=io.StringIO())
    path = env.get("_CONDOR_JOB_AD") or os.path.join(env.get("_CONDOR_SCRATCH_DIR") or os.getcwd(), ".job.ad")
    try:   # the job's stderr is the user's: nothing is said there (HTCondor says nothing either)
        with open(path, "a") as job_ad:
            job_ad.writelines(f"{name}{HOST_PORT_SUFFIX} = {port}\n" for name, port in services.items())
    except OSError:
        pass
    return services


def report_failure(failure: Failure, *, oom: bool = False) -> int:
    """One stderr line and the Chirp attributes; the exit status for a failure."""
    _say(failure.reason)
    if failure.is_hold:
        chirp.set_delayed({chirp.HOLD_REASON: failure.reason, chirp.HOLD_SUBCODE: int(failure.code),
                           chirp.OOM: oom})
        return EX_HOLD
    chirp.set_delayed({chirp.REQUEUE_REASON: failure.reason})
    return EX_TEMPFAIL


def report_usage(usage: dict) -> bool:
    """The container's usage as Chirp delayed attributes, when the starter offers Chirp; silent otherwise.

    HTCondor's own RemoteUserCpu/MemoryUsage come from its process family (see
    the doc); these land beside them in the schedd's ad whatever the host's
    cgroup setup, so an admin can always see what the container itself used.
    """
    config = os.environ.get("_CONDOR_CHIRP_CONFIG")
    values = {attr: usage[key] for key, attr in USAGE_ATTRS.items() if isinstance(usage.get(key), (int, float))}
    if not config or not os.path.isfile(config) or not values:
        return False
    return chirp.set_delayed({k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()},
                             stderr=io.StringIO())


def finish(final: dict) -> int:
    """The agent's final answer as this process's exit status."""
    if not final.get("ok"):
        return report_failure(Failure.from_dict(final.get("failure") or {"code": 305, "reason": "no reason"}))
    result = final.get("result") or {}
    report_usage(result.get("usage") or {})
    failure = Failure.from_dict(result["failure"]) if result.get("failure") else None
    if failure is not None:  # a runtime failure: OOM, over disk, executable not found
        report_failure(failure, oom=bool(result.get("oom")))
        if result.get("oom") or (failure.is_hold and result.get("signal") == signals.SIGKILL):
            return EX_OOM  # killed for going over a limit: 137, as the engine says of an OOM kill
    if result.get("signal"):
        return _die_by_signal(int(result["signal"]))
    code = result.get("exit_code")
    return int(code) if code is not None else EX_TEMPFAIL


def _die_by_signal(signum: int) -> int:
    """Die by the job's signal, so the starter records ExitBySignal (fallback: 128+N)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if signum not in (signals.SIGKILL, signals.SIGSTOP):
        signals.signal(signum, signals.SIG_DFL)
    signals.pthread_sigmask(signals.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    time.sleep(1.0)
    return 128 + signum


def main_launch(argv: list[str] | None = None) -> int:
    parser = Parser(prog="condor_docker launch", description=__doc__.splitlines()[0])
    socket_option = parser.add_argument("--socket", help="the agent's socket")
    parser.help_when_asked(socket_option, lambda: f"the agent's socket (default: {default_help()})")
    args = parser.parse_args(argv)
    launcher = Launcher(args.socket, dict(os.environ))
    launcher.install_signal_handlers()
    return launcher.run()


main = main_launch
