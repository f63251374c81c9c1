"""The JOB_EXIT hook: make sure the job's container is gone, and let the starter go on quickly.

`condor_docker_job_exit <exit|remove|hold|evict>` (or `condor_docker job-exit`),
job ad on stdin.  HTCondor passes no configured arguments to this hook, only the
reason, so the agent's socket comes from the job ad: PREPARE_JOB writes it there
(`CondorDockerAgentSocket`).  Output and exit status are ignored by HTCondor; we
log problems to stderr (the starter log) and exit 0, except for a command line
that is wrong (exit USAGE, core/exitcodes.py): that is a person's mistake, not
HTCondor's call, and the person should see it fail.

The starter waits for this hook before it transfers the job's output, so every
docker job pays its start-up.  So the hook parses no ad: it asks the agent
`cleanup_starter_job` (wire/ops.py), and the agent finds the job from the
hook's own condor_starter, by the kernel's word; of the ad it reads only the
socket line (`socket_line`, a strict scan).  classad2 (through `ads`) is
imported only on the rare paths, where the job id comes from the ad as
before (`cleanup`): an ad without the socket line (a job PREPARE_JOB did not
rewrite: only a docker job is ours), and an agent that answers UNKNOWN_OP
(older than this hook) or NO_STARTER (no condor_starter above the hook: the
tests' emulated starter, a person at a shell).  With no argparse,
dataclasses, typing or PREPARE_JOB machinery either, the hook runs up to its
agent call in about 40% of the time it took with the ad parsed (61 -> 24 ms;
docs/DESIGN-NOTES.md, bench/hook_start.py).
"""
from __future__ import annotations

import os
import sys

from ..core import exitcodes
from ..wire import protocol
from ..wire.ops import (
    NO_STARTER,
    UNKNOWN_OP,
    Cleanup,
    CleanupStarterJob,
    Record,
    error_of,
)
from ..wire.socketpath import agent_socket

TYPE_CHECKING = False   # typing is not imported at run time: the JOB_EXIT hook starts through this module
if TYPE_CHECKING:
    from typing import Any, TextIO

SOCKET_ATTR = "CondorDockerAgentSocket"   # the agent this job was prepared by (written by PREPARE_JOB)
CLEANUP_TIMEOUT = 20.0     # HTCondor kills JOB_EXIT after <KEYWORD>_HOOK_JOB_EXIT_TIMEOUT (30 s)
REASONS = ("exit", "remove", "hold", "evict")   # what the starter passes (StarterHookMgr.h)
USAGE = f"usage: condor_docker job-exit [--socket PATH] [{'|'.join(REASONS)}]  (job ad on stdin)"
CLEANED, NOTHING, FAILED = "cleaned", "nothing", "failed"   # what job_exit did (the agent's word, or none)


class ExitTarget(Record):
    """Which job's container to remove, and which agent to ask."""
    cluster: int
    proc: int
    slot: str
    socket: str


def socket_line(job_text: str) -> str | None:
    """The agent's socket as PREPARE_JOB wrote it: the last `CondorDockerAgentSocket = "<path>"` line.

    None when no line names the attribute (not a job we prepared).  "" when the
    last one is not a plain quoted string (an escape, an expression, a control
    character): the caller then asks the default socket, as for an empty path;
    a ClassAd parser is what would read more, and the hook does without one.
    """
    value = None
    for line in job_text.split("\n"):   # the starter's `Attr = Value` lines (not str.splitlines' breaks)
        name, equals, rest = line.partition("=")
        if not equals or name.strip().lower() != SOCKET_ATTR.lower():
            continue
        rest = rest.strip()
        inner = rest[1:-1]
        plain = len(rest) >= 2 and rest[0] == rest[-1] == '"' and not any(
            c in '"\\' or c < " " or c == "\x7f" for c in inner)
        value = inner if plain else ""
    return value


def slot_from(job_ad: Any, env: dict[str, str]) -> str:
    """`slot1_1` from RemoteHost `slot1_1@host`, else the starter's _CONDOR_SLOT."""
    from ..core import ads
    from ..core.failures import Failure

    try:
        remote_host = ads.get_str(job_ad, "RemoteHost")
    except Failure:
        remote_host = None
    if remote_host and "@" in remote_host:
        return remote_host.split("@", 1)[0]
    return env.get("_CONDOR_SLOT") or "slot1"


def exit_target(job_ad: Any, env: dict[str, str], socket_override: str | None) -> ExitTarget | None:
    """None when this is not a docker job we prepared (nothing to clean)."""
    from ..core import ads
    from ..core.failures import Failure

    try:
        socket_path = ads.get_str(job_ad, SOCKET_ATTR)
        if socket_path is None:                 # not prepared by us: only a docker job is ours
            from ..core.jobkind import is_docker_job
            if not is_docker_job(job_ad):
                return None
        cluster = ads.get_int(job_ad, "ClusterId")
        proc = ads.get_int(job_ad, "ProcId")
    except Failure:
        return None
    if cluster is None or proc is None:
        return None
    return ExitTarget(cluster, proc, slot_from(job_ad, env), agent_socket(socket_override or socket_path))


def job_exit(reason: str, job_text: str, env: dict[str, str], socket_override: str | None = None,
             log: TextIO | None = None) -> str:
    """Ask the agent to remove the container of this hook's starter; problems are logged, never raised.

    CLEANED when the agent answered ok, NOTHING when the ad is not a docker job of ours
    (nothing asked), FAILED when the agent did not answer or refused (logged).
    """
    log = log or sys.stderr
    from_ad = socket_line(job_text)
    if from_ad is None:   # not rewritten by PREPARE_JOB: whether it is a docker job at all is the ad's to say
        return cleanup_by_job_id(reason, job_text, env, socket_override, log)
    if not from_ad and not socket_override:
        print(f"condor_docker job-exit ({reason}): {SOCKET_ATTR} in the job ad is not a plain path; "
              "asking the default socket", file=log)
    socket_path = agent_socket(socket_override or from_ad or None)
    try:
        reply = protocol.AgentClient(socket_path, timeout=CLEANUP_TIMEOUT).call(CleanupStarterJob())
    except protocol.AgentUnavailable as err:
        print(f"condor_docker job-exit ({reason}): {err}; the agent's reaper will remove "
              f"any container left behind", file=log)
        return FAILED
    if error_of(reply, CleanupStarterJob.op) in (UNKNOWN_OP, NO_STARTER):
        return cleanup_by_job_id(reason, job_text, env, socket_path, log)
    return report(reason, "the job of this condor_starter", reply, log)


def cleanup_by_job_id(reason: str, job_text: str, env: dict[str, str], socket_override: str | None,
                      log: TextIO) -> str:
    """The `cleanup` op, with ClusterId/ProcId/slot from the job ad (parsed with classad2, hence rare)."""
    from ..core import ads
    from ..core.failures import Failure

    try:
        # No completeness check: a cut ad only lacks ClusterId/ProcId/the socket, and then
        # nothing is asked; the agent checks ownership itself and its reaper stays the backstop.
        job_ad = ads.parse_ad(job_text, "job ad on the JOB_EXIT hook's stdin", check_complete=False)
    except Failure as failure:
        print(f"condor_docker job-exit ({reason}): {failure.reason}", file=log)
        return NOTHING
    target = exit_target(job_ad, env, socket_override)
    if target is None:
        return NOTHING
    job = f"job {target.cluster}.{target.proc} on {target.slot}"
    try:
        reply = protocol.AgentClient(target.socket, timeout=CLEANUP_TIMEOUT).call(
            Cleanup(target.cluster, target.proc, target.slot))
    except protocol.AgentUnavailable as err:
        print(f"condor_docker job-exit ({reason}): {job}: {err}; the agent's reaper will remove "
              f"any container left behind", file=log)
        return FAILED
    return report(reason, job, reply, log)


def report(reason: str, job: str, reply: dict, log: TextIO) -> str:
    """One line for the starter log: what was removed, or why not; CLEANED or FAILED."""
    if not reply.get("ok"):
        failure = reply.get("failure")
        why = failure.get("reason", reply) if isinstance(failure, dict) else reply   # whatever answered
        print(f"condor_docker job-exit ({reason}): {job}: cleanup failed: {why}", file=log)
        return FAILED
    if reply.get("removed"):
        print(f"condor_docker job-exit ({reason}): {job}: removed {', '.join(map(str, reply['removed']))}",
              file=log)
    return CLEANED


def parse_args(argv: list[str]) -> tuple[str, str | None] | None:
    """(reason, socket override) from `[--socket PATH] [reason]`; None when the words are off."""
    socket_override: str | None = None
    words: list[str] = []
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--socket" and rest:
            socket_override = rest.pop(0)
        elif word.startswith("--socket="):
            socket_override = word.split("=", 1)[1]
        elif word.startswith("-"):
            return None
        else:
            words.append(word)
    if len(words) > 1:
        return None
    return (words[0] if words else "exit"), socket_override


def main_job_exit(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """`condor_docker job-exit [--socket S] <reason>`; HTCondor gives only the reason."""
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in ("-h", "--help"):
        print(f"condor_docker job-exit: {USAGE}")
        return exitcodes.OK
    parsed = parse_args(words)
    if parsed is None or parsed[1] == "":   # `--socket=` must not mean "the default socket"
        print(f"condor_docker job-exit: {USAGE}", file=sys.stderr)
        return exitcodes.USAGE  # HTCondor never calls us so; whoever did must see it fail
    reason, socket_override = parsed
    try:
        job_text = (stdin or sys.stdin).read()
    except (OSError, UnicodeDecodeError) as err:
        print(f"condor_docker job-exit: cannot read the job ad: {err}", file=sys.stderr)
        return 0
    if not job_text.strip():   # the starter always pipes the ad: this is a person at a shell
        print("condor_docker job-exit: no job ad on stdin; by hand: condor_docker job-exit exit < .job.ad",
              file=sys.stderr)
        return exitcodes.USAGE
    done = job_exit(reason, job_text, dict(os.environ), socket_override)
    if reason not in REASONS:   # cleaned up all the same: a newer starter may have a new word
        outcome = {CLEANED: "the container was cleaned up all the same",
                   NOTHING: "there was no container of ours to clean up",
                   FAILED: "the container was NOT cleaned up (see above); the agent's reaper will remove it"}
        print(f"condor_docker job-exit: unknown reason {reason!r} (the starter gives {', '.join(REASONS)}); "
              f"{outcome[done]}", file=sys.stderr)
        return exitcodes.USAGE
    return exitcodes.OK


def job_exit_entry() -> int:
    """Console-script entry for CONDOR_DOCKER_HOOK_JOB_EXIT: HTCondor runs `<path> <reason>`.

    The hook path must be a single executable and JOB_EXIT gets no configured
    arguments, so `condor_docker job-exit` cannot be named directly.
    """
    return main_job_exit(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(job_exit_entry())
