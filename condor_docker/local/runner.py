"""`condor_docker run job.sub`: the docker universe on one machine, no HTCondor daemons.

Each queued job goes through the same mapping and lifecycle as in a pool: a
scratch dir with `.job.ad`/`.machine.ad`, input files transferred in (transfer.py), the
container run as the job's user, outputs transferred back, and the submit
file's `log` written as an HTCondor job event log.  A job that cannot run is
held (event + reason) or retried, never dropped, and every job ends with a
terminal event in its log, so `condor_wait` returns.  Exit status (core/exitcodes.py):
0 when every job ran (whatever its own exit code), 1 when any job was held, 2 on
a bad submit file, 64 a bad command line, 69 no usable engine, 73 an unwritable
`log`, 130 interrupted.  stdout: one line per job, its outcome; stderr: what is
wrong with the run itself (one line, naming the fix) and pull progress.
"""
from __future__ import annotations

import argparse
import dataclasses
import fcntl
import logging
import os
import pwd
import shutil
import signal as signals
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..core import ads, exitcodes, gpus, request, spec
from ..core.argparsing import Parser
from ..core.failures import Code, Failure, HoldReasonCode, bound_requeue
from ..core.settings import (
    OverrideError,
    Settings,
    SettingsError,
    positive_seconds,
    seconds,
    settings_from_command_line,
)
from ..engine.client import Engine
from ..engine.image_cache import PullProgress
from ..engine.images import ImageRules, ensure_image
from ..engine.lifecycle import ContainerRun, ExitResult, JobIO, prepare_scratch
from ..host import cgroups
from . import userpolicy
from .eventlog import EventLog, JobId
from .localmachine import check_fits, local_machine_ad
from .submitfile import Proc, SubmitError, load_procs
from .transfer import transfer_in, transfer_out

log = logging.getLogger("condor_docker.runner")

# Local runs differ from a pool in two defaults: images a user loaded on their own
# machine are theirs to run, and a retry comes sooner.
RUNNER_DEFAULTS = {"DOCKER_TRUST_LOCAL_IMAGES": "true", "CONDOR_DOCKER_MAX_REQUEUES": "2"}
# the submit file's words for the ad attributes a user's file is opened from
STREAM_COMMANDS = {"Out": "output", "Err": "error", "In": "input"}


class Refused(Exception):
    """The run cannot start: one line naming the problem and the fix, and the exit code that says which."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Outcome:
    job: JobId
    result: ExitResult | None
    held: Failure | None
    policy: "userpolicy.UserPolicyDecision | None" = None
    removed: str | None = None      # why the job left the queue without running to its end
    error: str | None = None        # a bug in condor_docker stopped this job (the one line printed)

    def describe(self) -> str:
        if self.removed is not None:
            return f"job {self.job.cluster}.{self.job.proc}: removed: {self.removed}"
        if self.policy is not None and self.policy.action == "hold":
            return f"job {self.job.cluster}.{self.job.proc}: held (code {self.policy.code}): {self.policy.reason}"
        if self.held is not None:
            return f"job {self.job.cluster}.{self.job.proc}: held (subcode {int(self.held.code)}): {self.held.reason}"
        if self.policy is not None and self.policy.action == "remove":
            return f"job {self.job.cluster}.{self.job.proc}: removed: {self.policy.reason}"
        return f"job {self.job.cluster}.{self.job.proc}: {self.result.describe()}"


def _next_cluster(state_dir: str) -> int:
    """A cluster id unique on this machine for this user (a counter under a lock)."""
    os.makedirs(state_dir, exist_ok=True)
    with open(os.path.join(state_dir, "next_cluster"), "a+") as counter:
        fcntl.flock(counter, fcntl.LOCK_EX)
        counter.seek(0)
        current = int(counter.read().strip() or "1")
        counter.seek(0)
        counter.truncate()
        counter.write(str(current + 1))
    return current


def _run_as(name: str | None) -> tuple[int, int, str]:
    """The job's user: the caller, or (for root, who never runs jobs) `--user`, default nobody."""
    if name is not None and not name.strip():   # `--user "$EMPTY"` must not quietly mean nobody
        raise SubmitError("--user '': give the name of an ordinary user (e.g. --user nobody), or drop --user")
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        if name not in (None, entry.pw_name):
            raise SubmitError(f"--user {name}: only root may run jobs as another user; drop --user to run "
                              f"them as yourself ({entry.pw_name})")
    else:
        try:
            entry = pwd.getpwnam(name or "nobody")
        except KeyError:
            raise SubmitError(f"--user {name}: no such user on this machine") from None
    if entry.pw_uid == 0:
        raise SubmitError("jobs never run as root: pass --user <name> of an ordinary user")
    return entry.pw_uid, entry.pw_gid, entry.pw_name


class LocalRunner:
    """Runs procs one after another through the shared lifecycle."""

    def __init__(self, settings: Settings, engine: Engine, uid: int, gid: int, user: str,
                 retry_delay: float = 5.0, periodic_interval: float = 60.0,
                 gpu_ids: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.periodic_interval = periodic_interval   # PERIODIC_EXPR_INTERVAL's default
        self.gpu_ids = gpu_ids                        # this machine's GPUs (local runs)
        self.engine = engine
        self.uid, self.gid, self.user = uid, gid, user
        self.retry_delay = retry_delay
        self.current: ContainerRun | None = None
        self.job: JobId | None = None             # the job being run, for the Ctrl-C acknowledgement
        self.scratch: str | None = None           # its scratch dir, removed by _abandon when the worker is not
        self.interrupted = threading.Event()
        self._ending = threading.Lock()
        self.ended: set[JobId] = set()            # jobs whose aborted event is written (once, by either thread)

    def run_proc(self, proc: Proc, events: EventLog | None) -> Outcome:
        """Run until the job leaves the queue: done, held or removed, as the job's policy says."""
        job = self.job = JobId(ads.get_int(proc.ad, "ClusterId"), ads.get_int(proc.ad, "ProcId"))
        attempts = 0
        while True:
            try:
                result, policy = self._attempt(proc, job, events, attempts)
            except Failure as failure:
                if self.interrupted.is_set():       # an interrupted run starts no job again
                    return self._removed(job, events, "condor_docker run was interrupted before the job started")
                held = bound_requeue(failure, attempts + 1, self.settings.max_requeues)
                if held.is_hold:
                    if events:
                        events.held(job, held.reason, HoldReasonCode.HOOK_PREPARE_JOB_FAILURE, int(held.code))
                    return Outcome(job, None, held)
                attempts += 1
                log.warning("job %d.%d goes back to idle (%s); retry %d in %.0f s",
                            job.cluster, job.proc, failure.reason, attempts, self.retry_delay)
                if events:
                    events.requeued(job, failure.reason, code=int(failure.code))
                time.sleep(self.retry_delay)
                continue
            if self.interrupted.is_set():
                return self._removed(job, events, f"condor_docker run was interrupted ({result.describe()})")
            if result.failure is not None and result.failure.is_hold:
                failure = explain_transferred_executable(result.failure, proc)
                if events:
                    events.held(job, failure.reason, HoldReasonCode.JOB_POLICY, int(failure.code))
                return Outcome(job, result, failure)
            if policy is None and not self.interrupted.is_set():
                policy = userpolicy.on_exit(proc.ad)
            if policy is not None and policy.action == "hold":
                if events:
                    events.held(job, policy.reason, policy.code, policy.subcode)
                return Outcome(job, result, Failure(Code.POLICY_REFUSED, policy.reason), policy)
            if policy is not None and policy.action == "remove":
                if events:
                    events.aborted(job, policy.reason)
                return Outcome(job, result, None, policy)
            if policy is not None and policy.action == "requeue":
                log.info("job %d.%d %s; it runs again", job.cluster, job.proc, policy.reason)
                if events:
                    events.terminated_and_requeued(job, return_value=result.exit_code, signal=result.signal,
                                                   reason=policy.reason)
                proc.ad["JobStatus"] = userpolicy.IDLE
                continue
            if events:
                events.terminated(job, return_value=result.exit_code, signal=result.signal,
                                  user_cpu_s=result.usage.cpu_user_s, sys_cpu_s=result.usage.cpu_sys_s,
                                  memory_usage_mb=result.usage.peak_memory_mb,
                                  request_memory_mb=ads.get_int(proc.ad, "RequestMemory"),
                                  allocated_memory_mb=ads.get_int(proc.ad, "RequestMemory"),
                                  bytes_received=result.usage.network_in_bytes,
                                  bytes_sent=result.usage.network_out_bytes,
                                  disk_usage_kb=result.usage.disk_kb,
                                  request_disk_kb=ads.get_int(proc.ad, "RequestDisk"),
                                  allocated_disk_kb=ads.get_int(proc.ad, "RequestDisk"))
            return Outcome(job, result, None)

    def _removed(self, job: JobId, events: EventLog | None, reason: str) -> Outcome:
        """The job left the queue unfinished, as condor_rm would: an aborted event, whenever it happened."""
        with self._ending:
            if events and job not in self.ended:
                events.aborted(job, reason)
            self.ended.add(job)
        return Outcome(job, None, None, removed=reason)

    def _watch_policy(self, proc: Proc, run_started: float, stop: threading.Event,
                      decided: list) -> None:
        """The schedd's periodic evaluation: PeriodicHold/PeriodicRemove every interval while running."""
        while not stop.wait(self.periodic_interval):
            userpolicy.update_wall_clock(proc.ad, run_started)
            decision = userpolicy.periodic(proc.ad)
            if decision is not None and self.current is not None:
                log.info("job %s.%s: %s", proc.ad.get("ClusterId"), proc.ad.get("ProcId"), decision.reason)
                decided.append(decision)
                self.current.stop(signals.SIGTERM)
                return

    def _attempt(self, proc: Proc, job: JobId, events: EventLog | None,
                 attempts: int) -> tuple[ExitResult, "userpolicy.UserPolicyDecision | None"]:
        scratch = self.scratch = tempfile.mkdtemp(prefix=f"condor_docker-{job.cluster}.{job.proc}-")
        try:
            os.chown(scratch, self.uid, self.gid) if os.geteuid() == 0 else None
            machine_ad = ads.parse_ad(f'Name = "slot1_{job.proc + 1}@localhost"\nMachine = "localhost"\n'
                                      f"Cpus = {ads.get_int(proc.ad, 'RequestCpus')}\n"
                                      f"Memory = {ads.get_int(proc.ad, 'RequestMemory')}\n", "machine ad")
            starter_env = self._starter_env(scratch, job_request_slot(job))
            starter_env.update(gpus.starter_environment(self.gpu_ids[:ads.get_int(proc.ad, "RequestGPUs", 0) or 0]))
            job_request = request.from_ads(proc.ad, machine_ad, uid=self.uid, gid=self.gid, scratch_dir=scratch,
                                           starter_env=starter_env)
            job_request = dataclasses.replace(job_request, vouched=(("Owner", self.user), ("Cpus", job_request.cpus),
                                                                    ("Memory", job_request.memory_mb)))
            container = spec.build_spec(job_request, self.settings)
            transfer_in(proc, scratch, self.uid, self.gid)
            self._write_ads(scratch, proc, machine_ad)
            prepare_scratch(scratch, self.uid, self.gid)
            progress = PullProgress(job_request.image)
            progress.listeners.append(lambda snapshot: print(
                f"condor_docker run: job {job.cluster}.{job.proc}: pulling {snapshot['reference']}: "
                f"{snapshot['summary']}", file=sys.stderr, flush=True))
            with progress.ticking():
                ensure_image(self.engine, job_request.image, policy=job_request.pull_policy,
                             trust_local_images=self.settings.trust_local_images,
                             pull_timeout=self.settings.pull_timeout, stall_timeout=self.settings.pull_stall_timeout,
                             on_progress=progress, rules=ImageRules.of(self.settings))
            if progress.items:
                print(f"condor_docker run: job {job.cluster}.{job.proc}: pulled {job_request.image} in "
                      f"{progress.clock() - progress.started:.0f} s", file=sys.stderr, flush=True)
            if self.interrupted.is_set():       # Ctrl-C came during the pull
                raise Failure(Code.JOB_INTERRUPTED, "interrupted before the job started")
            if events:
                events.execute(job, "<127.0.0.1:0>", job_request.slot)
            run_started = time.time()
            userpolicy.mark_running(proc.ad, run_started)
            decided: list = []
            stop_watching = threading.Event()
            with _job_files(proc) as io:
                self.current = ContainerRun(self.engine, self._with_usage_cgroup(container), io,
                                            kill_grace=job_request.kill_grace or self.settings.kill_grace,
                                            disk_limit_kb=ads.get_int(proc.ad, "RequestDisk"),
                                            disk_check_period=self.settings.disk_check_period,
                                            reports_lost_output=True)
                if self.interrupted.is_set():
                    raise Failure(Code.JOB_INTERRUPTED, "interrupted before the job started")
                watcher = threading.Thread(target=self._watch_policy, args=(proc, run_started, stop_watching, decided),
                                           name="condor_docker-periodic", daemon=True)
                watcher.start()
                try:
                    result = self.current.run()
                finally:
                    stop_watching.set()
                    watcher.join()
            userpolicy.record_exit(proc.ad, result.exit_code, result.signal, run_started)
            check_output_kept(self.current, proc)
            transfer_out(proc, scratch)
            return result, (decided[0] if decided else None)
        finally:
            self.current = self.scratch = None
            shutil.rmtree(scratch, ignore_errors=True)

    def _with_usage_cgroup(self, container: spec.ContainerSpec) -> spec.ContainerSpec:
        """As root on a cgroupfs engine: a parent cgroup of its own, so the final usage is exact (engine/usage.py)."""
        if os.geteuid() != 0:
            return container
        try:
            driver = str(self.engine.info().get("CgroupDriver") or "")
        except Failure:
            return container
        parent = cgroups.container_cgroup_parent(f"{container.name}.run{os.getpid()}", None, driver)
        return dataclasses.replace(container, cgroup_parent=parent) if parent else container

    def _starter_env(self, scratch: str, slot: str) -> dict[str, str]:
        """What a starter puts in a job's environment, minus what points into the host."""
        return {"_CONDOR_SCRATCH_DIR": scratch, "_CONDOR_SLOT": slot, "_CONDOR_JOB_IWD": scratch,
                "_CONDOR_JOB_AD": os.path.join(scratch, ".job.ad"),
                "_CONDOR_MACHINE_AD": os.path.join(scratch, ".machine.ad"),
                "BATCH_SYSTEM": "HTCondor", "TMPDIR": "/tmp", "TMP": "/tmp", "TEMP": "/tmp"}

    def _write_ads(self, scratch: str, proc: Proc, machine_ad) -> None:
        for name, ad in ((".job.ad", proc.ad), (".machine.ad", machine_ad)):
            with open(os.path.join(scratch, name), "w") as stream:
                stream.write(ad.printOld())

def explain_transferred_executable(failure: Failure, proc: Proc) -> Failure:
    """Name the rule when an absolute executable was transferred and then could not run in the image.

    As in HTCondor, `executable = /bin/cat` is copied from the submit machine unless
    `transfer_executable = false`; a host binary then often cannot run in the image
    (another libc, none at all), and "Cannot run ./cat" alone does not say why.
    """
    command, iwd = ads.get_str(proc.ad, "Cmd") or "", ads.get_str(proc.ad, "Iwd") or ""
    from_submit_dir = bool(iwd) and command.startswith(iwd.rstrip(os.sep) + os.sep)   # a relative executable
    if (failure.code != Code.EXECUTABLE_NOT_FOUND or not os.path.isabs(command) or from_submit_dir
            or not ads.get_bool(proc.ad, "TransferExecutable", False)):
        return failure
    return Failure(failure.code, f"{failure.reason} (executable = {command} was transferred from this machine and "
                                 f"run as ./{os.path.basename(command)}, since transfer_executable defaults to true "
                                 f"as in HTCondor; to run the image's own {command}, write transfer_executable = false)")


def check_output_kept(run: ContainerRun, proc: Proc) -> None:
    """A job whose stdout or stderr could not be written (a full disk) is held, naming the command.

    HTCondor holds a job whose output cannot be transferred back; transfer_out holds
    it the same way here.  Its output is lost, so it did not run to a usable end.
    """
    if run.output_lost is None:
        return
    stream, err = run.output_lost
    attr = "Out" if stream == "stdout" else "Err"
    command = STREAM_COMMANDS[attr]
    raise Failure(Code.BAD_JOB_AD, f"{command} = {ads.get_str(proc.ad, attr)}: the job's {stream} could not be "
                                   f"written: {err.strerror}; free space there or point {command} at a writable "
                                   "file")


def job_request_slot(job: JobId) -> str:
    return f"slot1_{job.proc + 1}"


class _job_files:
    """Open the job's stdin/stdout/stderr files on the submit side (as HTCondor would)."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc
        self.files: list = []

    def __enter__(self) -> JobIO:
        def opened(attr: str, mode: str):
            path = ads.get_str(self.proc.ad, attr)
            if not path or path == "/dev/null":
                handle = open(os.devnull, mode)
            else:
                try:
                    handle = open(path, mode)
                except OSError as err:
                    raise Failure(Code.BAD_JOB_AD, f"{STREAM_COMMANDS[attr]} = {path}: cannot open it: "
                                  f"{err.strerror}; create its directory or fix the path") from err
            self.files.append(handle)
            return handle.fileno()
        return JobIO(stdout_fd=opened("Out", "wb"), stderr_fd=opened("Err", "wb"), stdin_fd=opened("In", "rb"))

    def __exit__(self, *exc) -> None:
        for handle in self.files:
            handle.close()


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="condor_docker run", description=__doc__.split("\n\n")[0])
    parser.add_argument("submit_file", help="a docker-universe submit file")
    parser.add_argument("--user", help="when run as root: the ordinary user the jobs run as (default: nobody; "
                        "root never runs jobs)")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a knob, e.g. --set CONDOR_DOCKER_DEFAULT_NETWORK=none (repeatable)")
    parser.add_argument("--retry-delay", type=seconds, default=5.0, help="seconds before a requeued job is retried")
    parser.add_argument("--periodic-interval", type=positive_seconds, default=60.0,
                        help="seconds between periodic_hold/periodic_remove checks (PERIODIC_EXPR_INTERVAL)")
    parser.add_argument("--state-dir", default=os.path.expanduser("~/.local/state/condor_docker"),
                        help="where the cluster-id counter lives")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the lifecycle to stderr")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Plan:
    """Everything checked before the first job is submitted: a run that cannot work refuses here."""
    settings: Settings
    uid: int
    gid: int
    user: str
    procs: list[Proc]
    warnings: list[str]
    gpu_ids: tuple[str, ...]


def runner_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """RUNNER_DEFAULTS, and the engine the user's docker CLI would use (DOCKER_HOST: rootless
    docker, a remote engine) unless --set CONDOR_DOCKER_ENGINE_URL says otherwise."""
    defaults = dict(RUNNER_DEFAULTS)
    if environ.get("DOCKER_HOST"):
        defaults["CONDOR_DOCKER_ENGINE_URL"] = environ["DOCKER_HOST"]
    return defaults


def _settings(pairs: list[str]) -> Settings:
    """The knobs, with DOCKER_EXTRA_ARGUMENTS parsed now: a refused option stops the run, not each job."""
    try:
        settings = settings_from_command_line(pairs, defaults=runner_defaults(os.environ))
        spec.parse_extra_arguments(settings.extra_arguments)
    except OverrideError as err:
        raise Refused(exitcodes.USAGE, str(err)) from None
    except SettingsError as err:
        from_command_line = any(p.partition("=")[0].strip() == "DOCKER_EXTRA_ARGUMENTS" for p in pairs)
        if from_command_line:
            raise Refused(exitcodes.USAGE, f"--set: {err}") from None
        raise Refused(exitcodes.CONFIG, f"{err} (in the HTCondor configuration; `condor_docker doctor` "
                                        "checks it)") from None
    return settings


def unwritable_log(path: str, err: OSError) -> str:
    """The one line for a `log =` file that cannot be written, before the run or during it."""
    return (f"log = {path}: cannot write the job event log: {err.strerror}; "
            "create its directory or point log at a writable file")


def _check_logs(procs: list[Proc]) -> None:
    """Each `log =` file can be written, before anything is submitted to it."""
    for path in dict.fromkeys(p.ad.get("UserLog") for p in procs if p.ad.get("UserLog")):
        existed = os.path.exists(path)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644))
            if not existed:       # a run refused later (no engine) leaves no empty log behind
                os.unlink(path)
        except OSError as err:
            raise Refused(exitcodes.CANTCREAT, unwritable_log(path, err)) from None


class RunLog(EventLog):
    """A `log =` file as the run writes it: a write that fails does not stop the jobs.

    The file may become unwritable while a job runs (replaced by a directory, a
    full disk): the job's own outcome is still true and is still reported; the
    first failure is kept (`failure`) and the run ends CANTCREAT naming `log =`.
    """

    def __init__(self, path: str) -> None:
        self.failure: str | None = None
        super().__init__(path)

    def _write(self, event_number: int, job: JobId, body: str) -> None:
        try:
            super()._write(event_number, job, body)
        except OSError as err:
            self.failure = self.failure or unwritable_log(self.path, err)


def _submit_all(procs: list[Proc]) -> dict[str, RunLog]:
    """Each job's submit event, in its `log`; a log that takes none refuses the run before any job runs.

    `log = /dev/full` opens (so _check_logs passes) and then takes no event.  The jobs
    already submitted to another log are aborted there, so condor_wait on it returns.
    """
    event_logs: dict[str, RunLog] = {}
    for path in dict.fromkeys(p.ad.get("UserLog") for p in procs if p.ad.get("UserLog")):
        try:
            event_logs[path] = RunLog(path)
        except OSError as err:
            raise Refused(exitcodes.CANTCREAT, unwritable_log(path, err)) from None
    submitted = []
    for proc in procs:
        job, events = JobId(proc.ad["ClusterId"], proc.ad["ProcId"]), event_logs.get(proc.ad.get("UserLog"))
        if events:
            events.submit(job, "<127.0.0.1:0>")
            if events.failure:
                for earlier, earlier_log in submitted:
                    earlier_log.aborted(earlier, f"condor_docker run did not start: {events.failure}")
                raise Refused(exitcodes.CANTCREAT, events.failure)
            submitted.append((job, events))
    return event_logs


def _check_engine(settings: Settings, engine: Engine) -> None:
    """The engine answers this user now: a socket the user may not open is no transient fault to retry."""
    try:
        engine.version()
        return
    except Failure as failure:
        reason = failure.reason
    url = settings.engine_url
    socket_path = url[len("unix://"):] if url.startswith("unix://") else None
    knob = "--set CONDOR_DOCKER_ENGINE_URL=unix:///path/to/docker.sock"
    if socket_path and not os.path.exists(socket_path):
        message = (f"no Docker engine at {url}: {socket_path} does not exist; start the engine "
                   f"(systemctl start docker) or point at it with {knob}")
    elif socket_path and not os.access(socket_path, os.R_OK | os.W_OK):
        me = pwd.getpwuid(os.geteuid()).pw_name
        message = (f"you ({me}) may not use the Docker engine at {url}: permission denied; ask an admin to "
                   f"add you to the docker group (usermod -aG docker {me}, then log in again), or run as root "
                   f"with --user {me}")
    else:
        message = f"the Docker engine at {url} does not answer: {reason}; is it running (docker info)?"
    raise Refused(exitcodes.UNAVAILABLE, message)


def _plan(args: argparse.Namespace) -> Plan:
    settings = _settings(args.set)
    try:
        uid, gid, user = _run_as(args.user)
    except SubmitError as err:
        raise Refused(exitcodes.USAGE, str(err)) from None
    try:
        cluster = _next_cluster(args.state_dir)
    except OSError as err:
        raise Refused(exitcodes.CANTCREAT, f"cannot keep the cluster counter in {args.state_dir}: "
                                           f"{err.strerror}; give --state-dir a directory you can write") from None
    warnings: list[str] = []
    try:
        procs = load_procs(args.submit_file, cluster, warnings)
        gpu_ids = gpus.machine_gpus()
        for proc in procs:
            check_fits(proc, local_machine_ad(gpu_ids))
    except (SubmitError, ValueError) as err:
        raise Refused(exitcodes.BAD_INPUT, str(err)) from None
    _check_logs(procs)
    return Plan(settings, uid, gid, user, procs, warnings + capped_requests(procs, settings), gpu_ids)


# (submit command, job attribute, Settings field, knob, unit): the caps core/spec.py applies to a container
CAPS = (("request_cpus", "RequestCpus", "max_cpus", "CONDOR_DOCKER_MAX_CPUS", ""),
        ("request_memory", "RequestMemory", "max_memory_mb", "CONDOR_DOCKER_MAX_MEMORY_MB", " MB"))


def capped_requests(procs: list[Proc], settings: Settings) -> list[str]:
    """A warning for each request a cap cuts: the job then runs with less than it asked for.

    spec.build_spec gives a container min(request, cap) without a word, which is right
    in a pool (the admin's cap) but surprising here; one line per distinct request.
    """
    lines: dict[str, None] = {}
    for proc in procs:
        for command, attr, field, knob, unit in CAPS:
            cap, wanted = getattr(settings, field), ads.get_int(proc.ad, attr, 0) or 0
            if cap and wanted > cap:
                lines[f"warning: {command} = {wanted}{unit} is capped by {knob} = {cap}: the job runs with "
                      f"{cap}{unit}"] = None
    return list(lines)


def main_run(argv: list[str]) -> int:
    args = _parse_args(argv)
    # without -v only warnings show, each as one line like every other line run prints
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if args.verbose
                        else "condor_docker run: %(message)s")
    try:
        plan = _plan(args)
        for warning in plan.warnings:
            print(f"condor_docker run: {warning}", file=sys.stderr)
        if not plan.procs:
            print(f"condor_docker run: {args.submit_file} queues no jobs (queue 0, or an empty item list); "
                  "nothing to run", file=sys.stderr)
            return exitcodes.OK
        engine = Engine(plan.settings.engine_url, plan.settings.engine_timeout)
        _check_engine(plan.settings, engine)
        event_logs = _submit_all(plan.procs)
    except Refused as refused:
        print(f"condor_docker run: {refused}", file=sys.stderr)
        return refused.exit_code
    runner = LocalRunner(plan.settings, engine, plan.uid, plan.gid, plan.user, args.retry_delay,
                         args.periodic_interval, plan.gpu_ids)
    outcomes = _run_all(runner, plan.procs, event_logs)
    for outcome in outcomes:
        print(outcome.describe())
    lost = [events.failure for events in event_logs.values() if events.failure]
    for line in lost:
        print(f"condor_docker run: {line}", file=sys.stderr)
    return exit_code(outcomes, runner.interrupted.is_set(), lost_record=bool(lost))


def exit_code(outcomes: list[Outcome], interrupted: bool, lost_record: bool = False) -> int:
    """0 only when every job ran to its end and its record was kept; which of the others, by how bad it is."""
    if any(o.error for o in outcomes):
        return exitcodes.INTERNAL
    if lost_record:
        return exitcodes.CANTCREAT
    if interrupted:
        return exitcodes.INTERRUPTED
    if any(o.held for o in outcomes):
        return exitcodes.HELD
    return exitcodes.OK


def _run_all(runner: LocalRunner, procs: list[Proc], event_logs: Mapping[str, EventLog]) -> list[Outcome]:
    """Run in a worker thread so Ctrl-C (or SIGTERM) stops the current container cleanly."""
    outcomes: list[Outcome] = []

    def work() -> None:
        for proc in procs:
            job = JobId(proc.ad["ClusterId"], proc.ad["ProcId"])
            events = event_logs.get(proc.ad.get("UserLog"))
            if runner.interrupted.is_set():
                outcomes.append(runner._removed(job, events, "condor_docker run was interrupted before the "
                                                             "job started"))
                continue
            try:
                outcomes.append(runner.run_proc(proc, events))
            except Exception as err:  # noqa: BLE001 - a bug must still leave a terminal event and one line
                outcomes.append(_broken(job, events, err))

    presses: list[int] = []

    def interrupt(signum, _frame) -> None:
        presses.append(signum)
        runner.interrupted.set()
        current, job = runner.current, runner.job
        if len(presses) == 1:
            what = f"job {job.cluster}.{job.proc}" if job is not None else "the run"
            _tell(f"condor_docker run: stopping {what} (signal {signum}); Ctrl-C again to kill it now")
            if current is not None:
                current.stop(signum)
        elif current is not None:
            _tell("condor_docker run: killing the job now")
            current.stop(signals.SIGKILL)

    # SIGHUP too: a closed terminal or a dropped ssh session must stop the job, not orphan its container
    previous = {s: signals.signal(s, interrupt) for s in (signals.SIGINT, signals.SIGTERM, signals.SIGHUP)}
    try:
        # a daemon: an interrupted pull the engine goes on with must not keep the run waiting
        worker = threading.Thread(target=work, name="condor_docker-run", daemon=True)
        worker.start()
        idle_since: float | None = None
        while worker.is_alive():
            worker.join(0.2)
            if runner.interrupted.is_set() and runner.current is None:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > ABANDON_AFTER:
                    return _abandon(runner, procs, outcomes, event_logs)
            else:
                idle_since = None
    finally:
        for signum, handler in previous.items():
            signals.signal(signum, handler)
    return outcomes


def _tell(line: str) -> None:
    """A line on stderr from a signal handler: after a SIGHUP the terminal may be gone (EIO)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


ABANDON_AFTER = 2.0   # seconds an interrupted run waits for a pull (no container yet) before it stops waiting


def _abandon(runner: LocalRunner, procs: list[Proc], outcomes: list[Outcome],
             event_logs: Mapping[str, EventLog]) -> list[Outcome]:
    """Interrupted with no container running (a pull in progress): every unfinished job is removed now.

    The worker thread is left in the pull and dies with the process, so its cleanup never
    runs: the scratch dir it made is removed here.
    """
    if runner.scratch:
        shutil.rmtree(runner.scratch, ignore_errors=True)
    done = {o.job for o in outcomes}
    final = list(outcomes)
    for proc in procs:
        job = JobId(proc.ad["ClusterId"], proc.ad["ProcId"])
        if job not in done:
            final.append(runner._removed(job, event_logs.get(proc.ad.get("UserLog")),
                                         "condor_docker run was interrupted before the job started"))
    return final


def _broken(job: JobId, events: EventLog | None, err: Exception) -> Outcome:
    """A bug in the runner: the job is removed (a terminal event, so condor_wait returns), with one line."""
    line = exitcodes.internal_error_line("run", err)
    print(line, file=sys.stderr, flush=True)
    if events:
        try:
            events.aborted(job, line)
        except OSError:
            pass
    return Outcome(job, None, None, removed=line, error=line)


main = main_run
