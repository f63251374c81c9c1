"""The starter's job hooks: PREPARE_JOB rewrites a docker job to run our launcher; JOB_EXIT cleans up.

Both run as the job's user, are started by the condor_starter and talk only to
the agent (never to the engine), so they import neither `docker` nor `htcondor2`.

PREPARE_JOB (`condor_docker prepare-job [--socket S] [--launcher L] [--max-requeues N]`)
    stdin  the job ad (`Attr = Value` lines); cwd = the job's scratch dir
    stdout `Attr = Value` lines the starter merges into its copy of the job ad
    A docker job is rewritten into an ordinary job whose executable is our
    launcher; the agent has already checked the request and pulled the image.
    A failure prints `HookStatusCode` (1..299 holds the job with HoldReasonCode
    19 and that subcode, >= 300 sends it back to idle) plus `HookStatusMessage`.

JOB_EXIT (`condor_docker job-exit <exit|remove|hold|evict>`)
    HTCondor passes no configured arguments to this hook, only the reason, so
    the socket comes from the job ad: PREPARE_JOB writes it there
    (`CondorDockerAgentSocket`).  Output and exit status are ignored by
    HTCondor; we log problems to stderr (the starter log) and exit 0.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from . import ads, imageref, protocol
from .arguments import args_to_v2_raw
from .failures import Code, Failure

SOCKET_ATTR = "CondorDockerAgentSocket"   # the agent this job was prepared by (for JOB_EXIT)
IMAGE_ATTR = "CondorDockerImage"          # the image the agent resolved (for the starter log)
DEFAULT_MAX_REQUEUES = 3
PREPARE_TIMEOUT = 3600.0   # the agent may pull for CONDOR_DOCKER_PULL_TIMEOUT (1800 s by default)
CLEANUP_TIMEOUT = 20.0     # HTCondor kills JOB_EXIT after <KEYWORD>_HOOK_JOB_EXIT_TIMEOUT (30 s)
EXIT_REASONS = ("exit", "remove", "hold", "evict")


@dataclass(frozen=True)
class HookOptions:
    socket: str
    launcher: str
    max_requeues: int
    timeout: float
    launcher_args: tuple[str, ...] = ()   # before `launch`: ("-m", "condor_docker.cli") for a bare python


def default_socket() -> str:
    return os.environ.get("CONDOR_DOCKER_AGENT_SOCKET") or protocol.DEFAULT_SOCKET


def default_launcher() -> tuple[str, tuple[str, ...]]:
    """(absolute executable, its leading arguments) the starter will run as the job.

    The starter resolves a relative `Cmd` against the scratch dir, so it must be
    absolute.  When we were started as `python -m condor_docker.cli`, argv[0] is
    a module file that cannot be executed: run the same interpreter with -m.
    """
    found = shutil.which("condor_docker")
    if found:
        return os.path.abspath(found), ()
    argv0 = os.path.abspath(sys.argv[0])
    if os.path.isfile(argv0) and os.access(argv0, os.X_OK) and not argv0.endswith(".py"):
        return argv0, ()
    return os.path.abspath(sys.executable), ("-m", "condor_docker.cli")


def _prepare_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="condor_docker prepare-job",
                                     description="HTCondor PREPARE_JOB hook (job ad on stdin)")
    parser.add_argument("--socket", default=None, help="the agent's socket")
    parser.add_argument("--launcher", default=None,
                        help="absolute path of the condor_docker entry point put in Cmd")
    parser.add_argument("--max-requeues", type=int, default=DEFAULT_MAX_REQUEUES,
                        help="hold instead of requeue when NumShadowStarts is above this")
    parser.add_argument("--timeout", type=float, default=PREPARE_TIMEOUT,
                        help="seconds to wait for the agent's answer (it may be pulling)")
    return parser


# ---------------------------------------------------------------- PREPARE_JOB


def rewrite_attrs(options: HookOptions, image: str | None) -> dict[str, Any]:
    """The edits that make the starter run our launcher as an ordinary job process.

    TransferExecutable = false: with it true (the default) the starter runs
    <scratch>/<basename of Cmd> instead of Cmd.  The launcher reads the original
    job (Cmd, Arguments, TransferExecutable) from .job.ad, which keeps it.
    """
    attrs: dict[str, Any] = {
        "WantDocker": False,
        "WantContainer": False,     # universe = container with a docker:// image: ours, not the starter's
        "Cmd": options.launcher,
        "Arguments": args_to_v2_raw([*options.launcher_args, "launch", "--socket", options.socket]),
        "TransferExecutable": False,
        SOCKET_ATTR: options.socket,
    }
    if image:
        attrs[IMAGE_ATTR] = image
    return attrs


def failure_attrs(failure: Failure) -> dict[str, Any]:
    """HookStatusCode/HookStatusMessage, as HTCondor reads them (the code decides hold or idle)."""
    return {"HookStatusCode": int(failure.code), "HookStatusMessage": failure.reason}


def bound_requeue(failure: Failure, job_ad: Any, max_requeues: int) -> Failure:
    """A transient failure that keeps coming back becomes a hold, so a job cannot loop forever.

    HTCondor requeues on >= 300 with no limit and no back-off, so we count starts
    ourselves (NumShadowStarts is 1 on the first attempt).
    """
    if failure.is_hold:
        return failure
    starts = max(_count(job_ad, "NumShadowStarts"), _count(job_ad, "NumJobStarts"))
    if starts > max_requeues:
        return Failure(Code.TOO_MANY_REQUEUES,
                       f"gave up after {starts} attempts (limit {max_requeues}); last error: {failure.reason}")
    return failure


def _count(job_ad: Any, attr: str) -> int:
    try:
        return ads.get_int(job_ad, attr, 0) or 0
    except Failure:
        return 0


def ask_agent_prepare(options: HookOptions, job_text: str, scratch_dir: str) -> str | None:
    """Ask the agent to check and pull; returns the image it will run, raises Failure."""
    client = protocol.AgentClient(options.socket, timeout=options.timeout)
    try:
        reply = client.call("prepare", job_ad=job_text, scratch_dir=scratch_dir)
    except protocol.AgentUnavailable as err:
        raise Failure(Code.AGENT_UNAVAILABLE,
                      f"{err}; the execute point's condor_docker agent is not running "
                      f"(DAEMON_LIST should include CONDOR_DOCKER_AGENT)") from err
    if reply.get("ok"):
        image = reply.get("image")
        return str(image) if image else None
    data = reply.get("failure") or {}
    try:
        raise Failure.from_dict(data)
    except (KeyError, ValueError, TypeError):
        raise Failure(Code.AGENT_UNAVAILABLE,
                      f"the condor_docker agent on {options.socket} gave an unreadable answer to prepare: "
                      f"{str(reply)[:200]}") from None


def slot_has_singularity(scratch_dir: str) -> bool:
    """Whether HTCondor's own Singularity/Apptainer support can run a non-docker container job here.

    Then the job is not ours and passes through untouched; otherwise it would fail
    obscurely in the starter, so we hold it with a reason that says what to write.
    (.machine.ad is the job user's file; all it can change is which of those two
    happens to that user's own job.)
    """
    try:
        with open(os.path.join(scratch_dir, ".machine.ad")) as stream:
            machine_ad = ads.parse_ad(stream.read(), ".machine.ad")
        return bool(ads.get_bool(machine_ad, "HasSingularity", False))
    except (OSError, Failure):
        return False


def prepare_job(job_text: str, scratch_dir: str, options: HookOptions) -> tuple[dict[str, Any], int]:
    """(attributes to print, exit status) for one job; no printing here, so tests call it."""
    from . import request  # classad2-only; kept local so advertise never pays for it

    try:
        job_ad = ads.parse_ad(job_text, "job ad on the hook's stdin")
        if not request.is_docker_job(job_ad):
            if request.is_container_job(job_ad) and not slot_has_singularity(scratch_dir):
                raise Failure(Code.INVALID_IMAGE, imageref.unsupported_container_reason(
                    ads.get_str(job_ad, "ContainerImage") or ""))
            return {}, 0
    except Failure as failure:
        return failure_attrs(failure), 1
    try:
        image = ask_agent_prepare(options, job_text, scratch_dir)
    except Failure as failure:
        return failure_attrs(bound_requeue(failure, job_ad, options.max_requeues)), 1
    return rewrite_attrs(options, image), 0


def main_prepare_job(argv: list[str] | None = None, stdin: TextIO | None = None,
                     stdout: TextIO | None = None) -> int:
    args = _prepare_parser().parse_args(argv)
    launcher, launcher_args = (os.path.abspath(args.launcher), ()) if args.launcher else default_launcher()
    options = HookOptions(socket=args.socket or default_socket(), launcher=launcher,
                          launcher_args=launcher_args, max_requeues=args.max_requeues, timeout=args.timeout)
    job_text = (stdin or sys.stdin).read()
    attrs, status = prepare_job(job_text, os.getcwd(), options)
    out = stdout or sys.stdout
    out.write(ads.format_ad_lines(attrs))
    out.flush()
    if status:
        print(f"condor_docker prepare-job: HookStatusCode {attrs.get('HookStatusCode')}: "
              f"{attrs.get('HookStatusMessage')}", file=sys.stderr)
    return status


# ---------------------------------------------------------------- JOB_EXIT


@dataclass(frozen=True)
class ExitTarget:
    """Which job's container to remove, and which agent to ask."""
    cluster: int
    proc: int
    slot: str
    socket: str


def slot_from(job_ad: Any, env: dict[str, str]) -> str:
    """`slot1_1` from RemoteHost `slot1_1@host`, else the starter's _CONDOR_SLOT."""
    try:
        remote_host = ads.get_str(job_ad, "RemoteHost")
    except Failure:
        remote_host = None
    if remote_host and "@" in remote_host:
        return remote_host.split("@", 1)[0]
    return env.get("_CONDOR_SLOT") or "slot1"


def exit_target(job_ad: Any, env: dict[str, str], socket_override: str | None) -> ExitTarget | None:
    """None when this is not a docker job we prepared (nothing to clean)."""
    from . import request

    try:
        socket_path = ads.get_str(job_ad, SOCKET_ATTR)
        docker = socket_path is not None or request.is_docker_job(job_ad)
        cluster = ads.get_int(job_ad, "ClusterId")
        proc = ads.get_int(job_ad, "ProcId")
    except Failure:
        return None
    if not docker or cluster is None or proc is None:
        return None
    return ExitTarget(cluster, proc, slot_from(job_ad, env),
                      socket_override or socket_path or default_socket())


def job_exit(reason: str, job_text: str, env: dict[str, str], socket_override: str | None = None,
             log: TextIO | None = None) -> int:
    """Ask the agent to remove the job's container; problems are logged, never raised."""
    log = log or sys.stderr
    try:
        job_ad = ads.parse_ad(job_text, "job ad on the JOB_EXIT hook's stdin")
    except Failure as failure:
        print(f"condor_docker job-exit ({reason}): {failure.reason}", file=log)
        return 0
    target = exit_target(job_ad, env, socket_override)
    if target is None:
        return 0
    job = f"job {target.cluster}.{target.proc} on {target.slot}"
    try:
        reply = protocol.AgentClient(target.socket, timeout=CLEANUP_TIMEOUT).call(
            "cleanup", cluster=target.cluster, proc=target.proc, slot=target.slot)
    except protocol.AgentUnavailable as err:
        print(f"condor_docker job-exit ({reason}): {job}: {err}; the agent's reaper will remove "
              f"any container left behind", file=log)
        return 0
    if not reply.get("ok"):
        print(f"condor_docker job-exit ({reason}): {job}: cleanup failed: "
              f"{(reply.get('failure') or {}).get('reason', reply)}", file=log)
    elif reply.get("removed"):
        print(f"condor_docker job-exit ({reason}): {job}: removed {', '.join(map(str, reply['removed']))}",
              file=log)
    return 0


def main_job_exit(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """`condor_docker job-exit [--socket S] <reason>`; HTCondor gives only the reason."""
    parser = argparse.ArgumentParser(prog="condor_docker job-exit",
                                     description="HTCondor JOB_EXIT hook (job ad on stdin)")
    parser.add_argument("--socket", default=None, help="the agent's socket (default: from the job ad)")
    parser.add_argument("reason", nargs="?", default="exit", help="exit, remove, hold or evict")
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        return 0  # never fail loudly: HTCondor ignores us anyway
    try:
        job_text = (stdin or sys.stdin).read()
    except (OSError, UnicodeDecodeError) as err:
        print(f"condor_docker job-exit: cannot read the job ad: {err}", file=sys.stderr)
        return 0
    return job_exit(args.reason, job_text, dict(os.environ), args.socket)


def job_exit_entry() -> int:
    """Console-script entry for CONDOR_DOCKER_HOOK_JOB_EXIT: HTCondor runs `<path> <reason>`.

    The hook path must be a single executable and JOB_EXIT gets no configured
    arguments, so `condor_docker job-exit` cannot be named directly.
    """
    return main_job_exit(sys.argv[1:])
