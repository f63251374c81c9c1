"""The JOB_EXIT hook: make sure the job's container is gone, and let the starter go on quickly.

`condor_docker_job_exit <exit|remove|hold|evict>` (or `condor_docker job-exit`),
job ad on stdin.  HTCondor passes no configured arguments to this hook, only the
reason, so the agent's socket comes from the job ad: PREPARE_JOB writes it there
(`CondorDockerAgentSocket`).  Output and exit status are ignored by HTCondor; we
log problems to stderr (the starter log) and exit 0, except for a command line
that is wrong (exit USAGE, core/exitcodes.py): that is a person's mistake, not
HTCondor's call, and the person should see it fail.

The starter waits for this hook before it transfers the job's output, so every
docker job pays its start-up.  It therefore imports only what it needs (classad2
through `ads`, the socket protocol) and no argparse, dataclasses or the PREPARE_JOB
machinery in starter/prepare_job.py, and it skips the line-by-line completeness check of the ad
(see job_exit()): together about 35 ms less per job (bench/pool.py, "EP teardown").
"""
from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple, TextIO

from ..core import ads, exitcodes
from ..core.failures import Failure
from ..wire import protocol
from ..wire.ops import Cleanup
from ..wire.socketpath import agent_socket

SOCKET_ATTR = "CondorDockerAgentSocket"   # the agent this job was prepared by (written by PREPARE_JOB)
CLEANUP_TIMEOUT = 20.0     # HTCondor kills JOB_EXIT after <KEYWORD>_HOOK_JOB_EXIT_TIMEOUT (30 s)
REASONS = ("exit", "remove", "hold", "evict")   # what the starter passes (StarterHookMgr.h)
USAGE = f"usage: condor_docker job-exit [--socket PATH] [{'|'.join(REASONS)}]  (job ad on stdin)"


class ExitTarget(NamedTuple):
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
    try:
        socket_path = ads.get_str(job_ad, SOCKET_ATTR)
        if socket_path is None:                 # not prepared by us: only a docker job is ours
            from ..core.request import (
                is_docker_job,  # (rare path: keeps the common one lean)
            )
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
             log: TextIO | None = None) -> int:
    """Ask the agent to remove the job's container; problems are logged, never raised."""
    log = log or sys.stderr
    try:
        # No completeness check: a cut ad only lacks ClusterId/ProcId/the socket, and then
        # nothing is asked; the agent checks ownership itself and its reaper stays the backstop.
        job_ad = ads.parse_ad(job_text, "job ad on the JOB_EXIT hook's stdin", check_complete=False)
    except Failure as failure:
        print(f"condor_docker job-exit ({reason}): {failure.reason}", file=log)
        return 0
    target = exit_target(job_ad, env, socket_override)
    if target is None:
        return 0
    job = f"job {target.cluster}.{target.proc} on {target.slot}"
    try:
        reply = protocol.AgentClient(target.socket, timeout=CLEANUP_TIMEOUT).call(
            Cleanup(target.cluster, target.proc, target.slot))
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
        print(f"condor_docker job-exit: unknown reason {reason!r} (the starter gives {', '.join(REASONS)}); "
              "the container was cleaned up all the same", file=sys.stderr)
        return exitcodes.USAGE
    return done


def job_exit_entry() -> int:
    """Console-script entry for CONDOR_DOCKER_HOOK_JOB_EXIT: HTCondor runs `<path> <reason>`.

    The hook path must be a single executable and JOB_EXIT gets no configured
    arguments, so `condor_docker job-exit` cannot be named directly.
    """
    return main_job_exit(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(job_exit_entry())
