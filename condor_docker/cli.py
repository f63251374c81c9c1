"""The one `condor_docker` command; each subcommand is a few lines over a module's main().

Subcommands import their module lazily, so the hooks and `advertise`, which run
often and under time budgets, never pay for the Docker SDK they do not use.
Whatever a subcommand does, the command ends with a code from core/exitcodes.py
and, on an error, one line naming it: never a traceback (CONDOR_DOCKER_DEBUG=1
shows one, for a bug report).
"""
from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Callable, NamedTuple

from .core import exitcodes
from .core.version import VERSION


class Subcommand(NamedTuple):
    """Not a dataclass, and traceback only once a bug shows one: the hooks start through this module,
    and those two imports (inspect, linecache, tokenize) cost each of them about 10 ms (docs/DESIGN-NOTES.md)."""
    module: str
    help: str
    audience: str      # which group of `--help` lists it


PEOPLE = "commands for people"
HTCONDOR = "commands HTCondor runs (hooks, cron, daemon; configured in config.d/)"
POOL = "commands of the pool-in-containers images (docs/POOL-IN-CONTAINERS.md)"

SUBCOMMANDS: dict[str, Subcommand] = {
    "run": Subcommand("condor_docker.local.runner", "run a docker-universe submit file on this machine, "
                      "no HTCondor needed", PEOPLE),
    "status": Subcommand("condor_docker.admin.status", "the agent's jobs, containers, pulls in flight, "
                         "image cache, health", PEOPLE),
    "doctor": Subcommand("condor_docker.admin.doctor", "check this machine's engine, agent and "
                         "configuration", PEOPLE),
    "config": Subcommand("condor_docker.admin.configgen", "print the config.d files generated from the "
                         "knob table", PEOPLE),
    "agent": Subcommand("condor_docker.agent.server", "the trusted daemon that alone talks to the Docker "
                        "engine", HTCONDOR),
    "advertise": Subcommand("condor_docker.starter.advertise", "startd cron: print HasDocker, DockerVersion, "
                            "the image cache", HTCONDOR),
    "prepare-job": Subcommand("condor_docker.starter.prepare_job", "PREPARE_JOB hook: validate, pull, "
                              "rewrite the job to run our launcher", HTCONDOR),
    "launch": Subcommand("condor_docker.starter.launch", "the job process: run the job's container "
                         "through the agent", HTCONDOR),
    "job-exit": Subcommand("condor_docker.starter.job_exit", "JOB_EXIT hook: make sure the job's container "
                           "is gone", HTCONDOR),
    "ssh-shell": Subcommand("condor_docker.starter.ssh_shell", "condor_ssh_to_job session: enter the job's "
                            "container through the agent", HTCONDOR),
    "pool-node": Subcommand("condor_docker.pool.entrypoint", "a pool node container's entrypoint: config "
                            "for its role, condor_master -f", POOL),
    "health": Subcommand("condor_docker.pool.rolehealth", "is this pool node's role really working "
                         "(exit 0/1, one line)", POOL),
}
VERSION_FLAGS = ("--version", "-version", "-V")   # condor_* tools spell it -version


def _usage() -> str:
    lines = ["usage: condor_docker <command> [options]   (condor_docker <command> --help for its options)",
             "       condor_docker --version"]
    for audience in (PEOPLE, HTCONDOR, POOL):
        lines += ["", f"{audience}:"]
        lines += [f"  {name:<12} {sub.help}" for name, sub in SUBCOMMANDS.items() if sub.audience == audience]
    lines += ["", "exit codes: docs/USERS.md \"Exit codes of every command\" (0 ok, 1 held or a check failed, 2 bad submit file, "
              "64 bad command line, 69 agent or engine unavailable, 70 a bug)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _closed_streams_to_devnull()
    if not argv:      # a mistake: the usage goes where errors go
        print(_usage(), file=sys.stderr)
        return exitcodes.USAGE
    if argv[0] in ("-h", "--help", "-help"):
        return guarded("help", lambda: print(_usage()) or exitcodes.OK)
    if argv[0] in VERSION_FLAGS:
        return guarded("--version", lambda: print(f"condor_docker {VERSION}") or exitcodes.OK)
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"condor_docker: unknown command {command!r}; `condor_docker --help` lists them", file=sys.stderr)
        return exitcodes.USAGE
    return guarded(command, lambda: _subcommand(command, rest))


def _subcommand(command: str, rest: list[str]) -> int:
    module = importlib.import_module(SUBCOMMANDS[command].module)
    entry = getattr(module, "main_" + command.replace("-", "_"), None) or module.main
    return int(entry(rest) or 0)


def guarded(command: str, body: Callable[[], int]) -> int:
    """`body`'s own code, with every way out mapped onto core/exitcodes.py."""
    try:
        code = body()
        sys.stdout.flush()      # here, not at exit: a full disk is then one line, not a traceback
        return code
    except SystemExit as done:
        # argparse's own exit for a bad command line is 2, which `run` uses for a bad submit file;
        # the pool images keep 2 for "the node cannot start" (docs/POOL-IN-CONTAINERS.md), whatever the cause
        if done.code == 2 and SUBCOMMANDS[command].audience != POOL:
            return exitcodes.USAGE
        return done.code if isinstance(done.code, int) else (exitcodes.OK if done.code is None else exitcodes.USAGE)
    except KeyboardInterrupt:
        print(f"condor_docker {command}: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`condor_docker status | head`): nothing left to tell anyone
        _quiet_stdout()
        return exitcodes.OK
    except OSError as err:
        if err.errno not in _OUTPUT_ERRORS:
            print(exitcodes.internal_error_line(command, err), file=sys.stderr)
            return exitcodes.INTERNAL
        _quiet_stdout()
        print(f"condor_docker {command}: cannot write the output: {err.strerror}", file=sys.stderr)
        return exitcodes.CANTCREAT
    except Exception as err:  # noqa: BLE001 - the last line of defence against a traceback
        print(exitcodes.internal_error_line(command, err), file=sys.stderr)
        if os.environ.get("CONDOR_DOCKER_DEBUG"):
            import traceback
            traceback.print_exc()
        return exitcodes.INTERNAL


_OUTPUT_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG)   # the output cannot be written


def _closed_streams_to_devnull() -> None:
    """Started with a standard stream closed (`<&-`, `>&-`): an empty stdin, output going nowhere, not a crash.

    stdin first, so that its /dev/null takes fd 0 if that is the free one.
    """
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode))


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
