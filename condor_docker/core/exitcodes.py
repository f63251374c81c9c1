"""Every exit status a `condor_docker` command ends with, declared once.

A script, a startd cron or `condor_wait` around us acts on these numbers, so each
one means one thing on every command that uses it; the numbers above 63 are
sysexits.h's, as for other Unix daemons and tools.  docs/USERS.md's table
("Exit codes of every command") is rendered from `TABLE` and a unit test keeps the two equal.
"""
from __future__ import annotations

import os
from collections import namedtuple


class ExitCode(namedtuple("ExitCode", ("code", "name", "meaning", "commands"))):
    """One exit status: its number, its name, what it means, and which commands end with it.

    A namedtuple, not a dataclass nor a typing.NamedTuple: the JOB_EXIT hook imports
    this module, and neither dataclasses nor typing is on its path (start-up time).
    """
    __slots__ = ()


TABLE: tuple[ExitCode, ...] = (
    ExitCode(0, "OK", "done: every job has a terminal event in its log (run); every check is ok (doctor)",
             "all"),
    ExitCode(1, "HELD", "a job was held (run); the job must be held (launch); the job is refused, "
             "HookStatusCode printed (prepare-job); a check failed (doctor, health)",
             "run, launch, prepare-job, doctor, health, ssh-shell"),
    ExitCode(2, "BAD_INPUT", "the submit file (or the job it describes) cannot be run here, nothing ran (run); "
             "the node cannot start, its command line or mounts are wrong (pool-node)", "run, pool-node"),
    ExitCode(64, "USAGE", "the command line is wrong: an unknown command or option, a bad `--set KNOB=VALUE`, "
             "no job ad on stdin", "all"),
    ExitCode(69, "UNAVAILABLE", "the agent or the Docker engine does not answer, or refuses this user",
             "run, status, ssh-shell"),
    ExitCode(70, "INTERNAL", "a bug in condor_docker: the one line says where; please report it",
             "all"),
    ExitCode(71, "SOCKET", "the agent's socket (or its directory) cannot be used safely", "agent"),
    ExitCode(73, "CANTCREAT", "a file condor_docker must write cannot be written (the agent's --log, "
             "the job's `log`, the cluster counter)", "agent, run"),
    ExitCode(75, "TEMPFAIL", "a transient failure: try again (HTCondor requeues the job)", "launch, ssh-shell"),
    ExitCode(78, "CONFIG", "a knob in the HTCondor configuration has a value we cannot use (named)",
             "agent, run"),
    ExitCode(130, "INTERRUPTED", "stopped by Ctrl-C or SIGTERM before every job finished", "run"),
    ExitCode(137, "OOM", "the job went over its memory or disk limit (the container was killed)", "launch"),
)
LAUNCH_NOTE = ("`launch` (the job process HTCondor watches) otherwise exits with the job's own "
               "exit status, or dies by the job's signal, so HTCondor records the job's own result.")

_BY_NAME = {entry.name: entry.code for entry in TABLE}
OK = _BY_NAME["OK"]
HELD = _BY_NAME["HELD"]
BAD_INPUT = _BY_NAME["BAD_INPUT"]
USAGE = _BY_NAME["USAGE"]
UNAVAILABLE = _BY_NAME["UNAVAILABLE"]
INTERNAL = _BY_NAME["INTERNAL"]
SOCKET = _BY_NAME["SOCKET"]
CANTCREAT = _BY_NAME["CANTCREAT"]
TEMPFAIL = _BY_NAME["TEMPFAIL"]
CONFIG = _BY_NAME["CONFIG"]
INTERRUPTED = _BY_NAME["INTERRUPTED"]
OOM = _BY_NAME["OOM"]


def markdown_table() -> str:
    """docs/USERS.md's "Exit codes of every command" table."""
    lines = ["| code | meaning | commands |", "|---|---|---|"]
    lines += [f"| {entry.code} | {entry.meaning} | {entry.commands} |" for entry in TABLE]
    return "\n".join(lines) + "\n\n" + LAUNCH_NOTE


def internal_error_line(command: str, err: BaseException) -> str:
    """One line for a bug (exit INTERNAL): what went wrong and where, and how to get the whole story."""
    import traceback
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return (f"condor_docker {command}: internal error: {type(err).__name__}: {err}{where}; "
            "please report it (CONDOR_DOCKER_DEBUG=1 prints the traceback)")
