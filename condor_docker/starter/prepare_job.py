"""The starter's PREPARE_JOB hook: it rewrites a docker job to run our launcher.

It runs as the job's user, is started by the condor_starter and talks only to
the agent (never to the engine), so it imports neither `docker` nor `htcondor2`.

PREPARE_JOB (`condor_docker prepare-job [--socket S] [--launcher L] [--max-requeues N]`)
    stdin  the job ad (`Attr = Value` lines); cwd = the job's scratch dir
    stdout `Attr = Value` lines the starter merges into its copy of the job ad
    A docker job is rewritten into an ordinary job whose executable is our
    launcher; the agent has already checked the request and pulled the image.
    A failure prints `HookStatusCode` (1..299 holds the job with HoldReasonCode
    19 and that subcode, >= 300 sends it back to idle) plus `HookStatusMessage`.

The JOB_EXIT hook (`condor_docker job-exit <exit|remove|hold|evict>`), which cleans up
and is configured only before HTCondor 25.4, is starter/job_exit.py.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NamedTuple, TextIO

from ..core import ads, exitcodes, imageref, jobkind
from ..core.argparsing import Parser
from ..core.arguments import args_to_v2_raw
from ..core.failures import Code, Failure, bound_requeue
from ..wire import protocol
from ..wire.ops import Prepare
from ..wire.socketpath import agent_socket
from . import chirp
from .job_exit import SOCKET_ATTR  # PREPARE_JOB writes the socket JOB_EXIT reads

IMAGE_ATTR = "CondorDockerImage"          # the image the agent resolved (for the starter log)
DEFAULT_MAX_REQUEUES = 3
PREPARE_TIMEOUT = 3600.0   # the agent may pull for CONDOR_DOCKER_PULL_TIMEOUT (1800 s by default)
EXIT_REASONS = ("exit", "remove", "hold", "evict")


class HookOptions(NamedTuple):
    """The hook's options.  (No dataclass, shutil, settings or job model on the hook's path: each
    is imported where it is needed, or not at all; docs/DESIGN-NOTES.md has the figures.)"""
    socket: str
    launcher: str
    max_requeues: int
    timeout: float
    launcher_args: tuple[str, ...] = ()   # before `launch`: ("-m", "condor_docker.cli") for a bare python


def which(name: str) -> str | None:
    """shutil.which(name) as on POSIX, without shutil (bz2, lzma, fnmatch: ~3 ms of every PREPARE_JOB)."""
    path = os.environ.get("PATH")
    if path is None:
        try:
            path = os.confstr("CS_PATH") or os.defpath
        except (AttributeError, ValueError):
            path = os.defpath
    for directory in dict.fromkeys(path.split(os.pathsep)) if path else ():
        candidate = os.path.join(directory, name)
        if os.path.exists(candidate) and os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def default_launcher() -> tuple[str, tuple[str, ...]]:
    """(absolute executable, its leading arguments) the starter will run as the job.

    The starter resolves a relative `Cmd` against the scratch dir, so it must be
    absolute.  When we were started as `python -m condor_docker.cli`, argv[0] is
    a module file that cannot be executed: run the same interpreter with -m.
    """
    found = which("condor_docker")
    if found:
        return os.path.abspath(found), ()
    argv0 = os.path.abspath(sys.argv[0])
    if os.path.isfile(argv0) and os.access(argv0, os.X_OK) and not argv0.endswith(".py"):
        return argv0, ()
    return os.path.abspath(sys.executable), ("-m", "condor_docker.cli")


def positive_seconds(text: str) -> float:
    """--timeout's type (core/settings.py's), whose knob table is imported only when --timeout is given."""
    from ..core.settings import positive_seconds as parse

    return parse(text)


def requeue_limit(text: str) -> int:
    """--max-requeues' type: a whole number from 0 (-1 held every job "after 0 attempts")."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 (0: hold at the first "
                                         "transient failure)")
    return value


def _prepare_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="condor_docker prepare-job",
                                     description="HTCondor PREPARE_JOB hook (job ad on stdin)")
    parser.add_argument("--socket", default=None, help="the agent's socket")
    parser.add_argument("--launcher", default=None,
                        help="absolute path of the condor_docker entry point put in Cmd")
    parser.add_argument("--max-requeues", type=requeue_limit, default=DEFAULT_MAX_REQUEUES,
                        help="hold instead of requeue when NumShadowStarts is above this")
    parser.add_argument("--timeout", type=positive_seconds, default=PREPARE_TIMEOUT,
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
        # universe = container with a docker:// image: ours, not the starter's (its Singularity
        # support takes any job with WantDockerImage = true and fails where there is none)
        "WantContainer": False,
        "WantDockerImage": False,
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


def job_starts(job_ad: Any) -> int:
    """How often HTCondor has started the job, this attempt included (NumShadowStarts is 1 on the first)."""
    return max(_count(job_ad, "NumShadowStarts"), _count(job_ad, "NumJobStarts"))


def _count(job_ad: Any, attr: str) -> int:
    try:
        return ads.get_int(job_ad, attr, 0) or 0
    except Failure:
        return 0


PULL_PROGRESS_ATTR = "ChirpCondorDockerPullProgress"


class PullReporter:
    """Passes a pull's progress on while the hook waits: stderr, and a Chirp attribute for the owner.

    Seen on a real 25.0 pool: the starter keeps no PREPARE_JOB stderr at its default
    log level, refuses an immediate Chirp update at this point, and forwards a delayed
    one (`ChirpCondorDockerPullProgress`, through the Chirp config the starter writes
    into the scratch dir before input transfer) once the job starts; so the owner gets
    the pull's summary ("done pulling …") and the live view is the agent's log and
    `condor_docker status`.  Chirp is a courtesy: after one failure it is not tried again.
    """

    def __init__(self, scratch_dir: str, stderr: TextIO | None = None) -> None:
        self.config = os.environ.get("_CONDOR_CHIRP_CONFIG") or chirp.config_beside(scratch_dir)
        self.stderr = stderr or sys.stderr
        self.chirp_works = True
        self.last: dict | None = None   # the latest progress event, for the final "done" line

    @staticmethod
    def line(event: dict) -> str:
        mb = 1024 * 1024
        return (f"pulling {event.get('reference')}: {event.get('bytes_done', 0) / mb:.1f}"
                f"/{event.get('bytes_total', 0) / mb:.1f} MB, {event.get('layers_done', 0)}"
                f"/{event.get('layers', 0)} layers, {event.get('seconds', 0):.0f} s")

    def __call__(self, event: dict) -> None:
        self.last = event
        self._show(self.line(event))

    def finished(self) -> None:
        """After a reported pull succeeded: the attribute's last value says it is done, not 60%."""
        if self.last:
            done = dict(self.last, bytes_done=self.last.get("bytes_total", 0), layers_done=self.last.get("layers", 0))
            self._show("done " + self.line(done))

    def _show(self, text: str) -> None:
        print(f"condor_docker prepare-job: {text}", file=self.stderr, flush=True)
        if self.chirp_works and os.path.isfile(self.config):
            self.chirp_works = chirp.set_delayed({PULL_PROGRESS_ATTR: text}, config=self.config,
                                                 stderr=self.stderr, timeout=2.0)


def ask_agent_prepare(options: HookOptions, job_text: str, scratch_dir: str) -> str | None:
    """Ask the agent to check and pull; returns the image it will run, raises Failure."""
    request = Prepare(scratch_dir, job_text, progress=True)
    size = len(protocol.encode(request.to_message()))
    if size > protocol.MAX_LINE:   # the agent would close on it: "lost the agent", a requeue
        raise Failure(Code.BAD_JOB_AD, f"the job ad on the hook's stdin is too large ({len(job_text)} characters, "
                                       f"{size} bytes as a request; the agent takes at most {protocol.MAX_LINE})")
    client = protocol.AgentClient(options.socket, timeout=options.timeout)
    reporter = PullReporter(scratch_dir)
    try:
        reply: dict = {}
        for reply in client.stream(request):
            if reply.get("event") == "pull_progress":
                reporter(reply)
    except protocol.AgentUnavailable as err:
        raise Failure(Code.AGENT_UNAVAILABLE,
                      f"{err}; the execute point's condor_docker agent is not running "
                      f"(DAEMON_LIST should include CONDOR_DOCKER_AGENT)") from err
    if reply.get("ok"):
        reporter.finished()
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
    try:
        job_ad = ads.parse_ad(job_text, "job ad on the hook's stdin")
    except Failure as failure:
        if not jobkind.may_be_ours(job_text):
            return {}, 0   # not a docker job: HTCondor runs it, whatever our reader makes of its ad
        return failure_attrs(failure), 1
    if not jobkind.is_docker_job(job_ad):
        if jobkind.is_container_job(job_ad) and not slot_has_singularity(scratch_dir):
            return failure_attrs(Failure(Code.INVALID_IMAGE, imageref.unsupported_container_reason(
                ads.get_str(job_ad, "ContainerImage") or ""))), 1
        return {}, 0
    try:
        image = ask_agent_prepare(options, job_text, scratch_dir)
    except Failure as failure:
        return failure_attrs(bound_requeue(failure, job_starts(job_ad), options.max_requeues)), 1
    return rewrite_attrs(options, image), 0


def main_prepare_job(argv: list[str] | None = None, stdin: TextIO | None = None,
                     stdout: TextIO | None = None) -> int:
    args = _prepare_parser().parse_args(argv)
    launcher, launcher_args = (os.path.abspath(args.launcher), ()) if args.launcher else default_launcher()
    options = HookOptions(socket=agent_socket(args.socket), launcher=launcher,
                          launcher_args=launcher_args, max_requeues=args.max_requeues, timeout=args.timeout)
    source = stdin or sys.stdin
    job_text = "" if source.isatty() else source.read()
    if not job_text.strip():
        # HTCondor always pipes the job ad in; a person at a terminal would otherwise wait, or get "ok"
        print("condor_docker prepare-job: no job ad on stdin: HTCondor pipes it in; by hand, run "
              "condor_docker prepare-job < .job.ad in the job's scratch dir", file=sys.stderr)
        return exitcodes.USAGE
    attrs, status = prepare_job(job_text, os.getcwd(), options)
    out = stdout or sys.stdout
    out.write(ads.format_ad_lines(attrs))
    out.flush()
    if status:
        print(f"condor_docker prepare-job: HookStatusCode {attrs.get('HookStatusCode')}: "
              f"{attrs.get('HookStatusMessage')}", file=sys.stderr)
    return status

