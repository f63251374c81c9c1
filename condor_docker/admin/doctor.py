"""`condor_docker doctor`: check this machine's configuration, engine and agent, for an admin.

Unlike the hooks and `advertise`, which only ask the agent, this talks to the
engine directly, so it must run as root (or a member of the docker group).
Each check prints one line `ok|FAIL  <what>: <detail>`; the exit status is the
number of failed checks (0 when all is well).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

from ..core.failures import Failure
from ..core.settings import (
    EX_USAGE,
    OverrideError,
    Settings,
    SettingsError,
    settings_from_command_line,
)
from ..wire.ops import Ping
from ..wire.protocol import AgentClient, AgentUnavailable


def _check(name: str, probe: Callable[[], str]) -> bool:
    try:
        detail = probe()
        print(f"ok    {name}: {detail}")
        return True
    except (Failure, AgentUnavailable, SettingsError, OSError) as err:
        print(f"FAIL  {name}: {getattr(err, 'reason', err)}")
        return False


def _engine(settings: Settings) -> str:
    from ..engine.client import Engine
    engine = Engine(settings.engine_url, min(settings.engine_timeout, 10))
    try:
        version = engine.version()
        managed = engine.managed_containers()
        return f"Docker {version.get('Version')} at {settings.engine_url}; {len(managed)} condor_docker container(s)"
    finally:
        engine.close()


def _agent(settings: Settings) -> str:
    reply = AgentClient(settings.agent_socket, timeout=10).call(Ping())
    if not reply.get("healthy", False):
        raise AgentUnavailable(f"the agent answers but reports: {reply.get('reason')}")
    return f"agent {reply.get('version')} answers on {settings.agent_socket}"


def _execute_dirs(settings: Settings) -> str:
    missing = [d for d in settings.execute_dirs if not os.path.isdir(d)]
    if missing:
        raise OSError(f"CONDOR_DOCKER_EXECUTE_DIRS names missing directories: {', '.join(missing)}")
    return ", ".join(settings.execute_dirs)


def main_doctor(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="condor_docker doctor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="override a knob")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_command_line(args.set)
    except OverrideError as err:
        print(f"condor_docker doctor: {err}", file=sys.stderr)
        return EX_USAGE
    except SettingsError as err:
        print(f"FAIL  configuration: {err}")
        return 1
    print("ok    configuration: every knob has a usable value")
    checks = [("execute dirs", lambda: _execute_dirs(settings)),
              ("engine", lambda: _engine(settings)),
              ("agent", lambda: _agent(settings))]
    return sum(not _check(name, probe) for name, probe in checks)


main = main_doctor
