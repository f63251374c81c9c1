"""Startd cron job: publish whether this machine can run docker jobs (`condor_docker advertise`).

The startd runs it every period as the condor user and merges each `Attr = Value`
line of its stdout into the slot ads, whatever the exit code.  It asks the agent
(which alone talks to the engine) and never the engine itself, so it stays
fast and small: protocol, ads (classad2) and the standard library only.

When the agent cannot be reached the machine says so instead of staying silent:
`HasDocker = false` and a `DockerOfflineReason` an admin can act on, so docker
jobs stop matching this machine and `condor_status -af DockerOfflineReason`
explains why.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from typing import Any, TextIO

from ..core import ads, exitcodes
from ..core.argparsing import Parser
from ..core.argparsing import socket_path as nonempty_socket
from ..core.settings import positive_seconds, seconds
from ..wire import protocol
from ..wire.ops import MachineAttrs
from ..wire.socketpath import agent_socket

TIMEOUT = 20.0  # connect and read: longer than the agent's first engine check with its self-test (a
#                 slow machine took over 5 s: HasDocker stayed false a whole cron period); the
#                 cron period is 60 s, and a hung agent must not hang us past it
# The startd runs its first cron job the moment it starts, while condor_master is
# still starting the agent beside it; the next run is a whole period later.  So a
# missing or refusing socket is retried for this long before saying HasDocker = false
# (HTCondor's own docker universe advertises at once; so must we).
AGENT_START_WAIT = 20.0
# `universe = container` with a docker:// image: condor_submit requires
# TARGET.HasContainer && TARGET.HasDockerURL, and we run those jobs too.  Written as
# expressions over the slot's own HasDocker, so they follow it; HasContainer stays
# true where HTCondor's own Singularity/Apptainer support is there.
CONTAINER_LINES = ("HasDockerURL = HasDocker\n"
                   "HasContainer = HasDocker || (HasSingularity =?= true)\n")
RETRY_INTERVAL = 0.25
_ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HINT = "start it (DAEMON_LIST includes CONDOR_DOCKER_AGENT) or check its log"


def _user() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (KeyError, ImportError):
        return f"uid {os.geteuid()}"


def offline_reason(socket_path: str, err: protocol.AgentUnavailable) -> str:
    """One line for DockerOfflineReason that says what to do, from how the call failed."""
    cause = err.__cause__
    if isinstance(cause, PermissionError):
        return (f"condor_docker agent socket {socket_path} refused {_user()}: permission denied; "
                f"check the permissions of the socket and its directory (the agent must let the "
                f"condor user and job users connect)")
    if isinstance(cause, OSError) and cause.strerror:
        detail = cause.strerror
    elif cause is not None:
        detail = str(cause) or type(cause).__name__
    else:
        detail = str(err)
    return f"condor_docker agent not running: {socket_path}: {detail}; {HINT}"


def _agent_starting(err: protocol.AgentUnavailable) -> bool:
    """No socket yet, or nobody listening on it yet: what an agent that is starting looks like."""
    return isinstance(err.__cause__, (FileNotFoundError, ConnectionRefusedError))


def call_machine_attrs(socket_path: str, timeout: float, start_wait: float,
                       clock: Any = time.monotonic, sleep: Any = time.sleep) -> dict[str, Any]:
    """The agent's reply to machine_attrs, waiting up to `start_wait` s for an agent that is starting."""
    deadline = clock() + start_wait
    while True:
        try:
            return protocol.AgentClient(socket_path, timeout=timeout).call(MachineAttrs())
        except protocol.AgentUnavailable as err:
            if not _agent_starting(err) or clock() + RETRY_INTERVAL > deadline:
                raise
        sleep(RETRY_INTERVAL)


def query_agent(socket_path: str, timeout: float = TIMEOUT, start_wait: float = 0.0) -> dict[str, Any]:
    """The slot attributes to publish; never raises."""
    try:
        reply = call_machine_attrs(socket_path, timeout, start_wait)
    except protocol.AgentUnavailable as err:
        return {"HasDocker": False, "DockerOfflineReason": offline_reason(socket_path, err)}
    if not reply.get("ok"):
        reason = (reply.get("failure") or {}).get("reason") or str(reply)[:200]
        return {"HasDocker": False,
                "DockerOfflineReason": f"condor_docker agent on {socket_path} failed: {reason}"}
    attrs = reply.get("attrs")
    if not isinstance(attrs, dict) or "HasDocker" not in attrs:
        return {"HasDocker": False,
                "DockerOfflineReason": f"condor_docker agent on {socket_path} gave an unreadable "
                                       f"answer to machine_attrs; {HINT}"}
    return attrs


def format_attrs(attrs: dict[str, Any]) -> str:
    """`Attr = Value` lines; an attribute we cannot write is dropped, not fatal.

    DockerOfflineReason is always printed (undefined when healthy) so that an
    old reason does not linger in the slot ad after the agent recovers.
    """
    lines = []
    for name, value in attrs.items():
        if not _ATTR_NAME.match(str(name)) or value is None:
            continue
        try:
            lines.append(ads.format_ad_lines({name: value}))
        except TypeError:
            continue
    if "DockerOfflineReason" not in attrs or attrs["DockerOfflineReason"] is None:
        lines.append("DockerOfflineReason = undefined\n")
    return "".join(lines) + CONTAINER_LINES


class _Refused(Exception):
    """A command line argparse itself cannot read (advertise then goes on with every default)."""


class _CronParser(Parser):
    def error(self, message: str) -> Any:
        raise _Refused(message)


_MISSING = object()   # the value of an option given with none
# option -> (its check, its default): a bad value is dropped for the default, with one stderr line
_CHECKS = {"socket": (nonempty_socket, None), "timeout": (positive_seconds, TIMEOUT),
           "agent_start_wait": (seconds, AGENT_START_WAIT)}


def parse_options(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options, and what was wrong with them: a bad or missing value reads as its default.

    A startd cron prints nothing only to unpublish: a stray word is ignored, and so is a
    bad value (`--agent-start-wait 20s`, a trailing `--socket`), so HasDocker is what it
    would be without it.
    """
    parser = _CronParser(prog="condor_docker advertise", description="startd cron: print HasDocker and the image cache")
    parser.add_argument("--socket", nargs="?", type=str, const=_MISSING, metavar="PATH", help="the agent's socket")
    parser.add_argument("--timeout", nargs="?", type=str, const=_MISSING, help=argparse.SUPPRESS)
    parser.add_argument("--agent-start-wait", nargs="?", type=str, const=_MISSING, metavar="SECONDS",
                        help=f"how long to wait for an agent that is starting (default {AGENT_START_WAIT})")
    problems: list[str] = []
    try:
        args, _unknown = parser.parse_known_args(argv)   # a cron line with extra words still publishes
    except _Refused as refused:
        args, problems = argparse.Namespace(socket=None, timeout=None, agent_start_wait=None), [str(refused)]
    for name, (check, default) in _CHECKS.items():
        option = "--" + name.replace("_", "-")
        value = getattr(args, name)
        if value is None or value is _MISSING:
            if value is _MISSING:   # `--socket` last on the line, or before another option
                problems.append(f"{option} needs a value")
            setattr(args, name, default)
            continue
        try:
            setattr(args, name, check(value))
        except argparse.ArgumentTypeError as err:
            problems.append(f"{option}: {err}")
            setattr(args, name, default)
    return args, problems


def main_advertise(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    """The ad on stdout, always; exit USAGE (with the ad all the same) when an option's value was bad."""
    args, problems = parse_options(argv)
    socket_path = agent_socket(args.socket)
    out = stdout or sys.stdout
    out.write(format_attrs(query_agent(socket_path, args.timeout, args.agent_start_wait)))
    out.flush()
    if problems:
        print(f"condor_docker advertise: {'; '.join(problems)}; published as without it "
              "(`condor_docker advertise --help` lists the options)", file=sys.stderr)
        return exitcodes.USAGE
    return exitcodes.OK
