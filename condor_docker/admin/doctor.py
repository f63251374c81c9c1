"""`condor_docker doctor`: check this machine's configuration, engine and agent, for an admin.

Unlike the hooks and `advertise`, which only ask the agent, this talks to the
engine directly, so it must run as root (or a member of the docker group).
Each check prints one line `ok|FAIL  <what>: <detail>` (or, with `--json`, one JSON
object: {"ok": bool, "checks": [{"check", "ok", "detail"}]}).  Exit status
(core/exitcodes.py): 0 when every check is ok, 1 when any failed, 64 for a bad
command line.  The HTCondor checks read the configuration through htcondor2; the
knobs (DOCKER_EXTRA_ARGUMENTS too) are parsed as the agent parses them at start.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from typing import Callable, NoReturn

from ..core import exitcodes
from ..core.argparsing import Parser
from ..core.failures import Failure
from ..core.settings import (
    OverrideError,
    Settings,
    SettingsError,
    htcondor_text_lookup,
    settings_from_command_line,
)
from ..core.spec import parse_extra_arguments
from ..host.logfiles import LogConfigError, Rotation
from ..wire.ops import Ping
from ..wire.protocol import AgentClient, AgentUnavailable
from . import htcondor_checks


@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.check}: {self.detail}"


def _check(name: str, probe: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(name, True, probe())
    except (Failure, AgentUnavailable, SettingsError, OSError, htcondor_checks.ConfigProblem,
            LogConfigError) as err:
        return CheckResult(name, False, str(getattr(err, "reason", err)))


def _engine(settings: Settings) -> str:
    from ..engine.client import Engine
    url = settings.engine_url
    socket_path = url[len("unix://"):] if url.startswith("unix://") else None
    if socket_path and os.path.exists(socket_path) and not os.access(socket_path, os.R_OK | os.W_OK):
        raise OSError(f"{url}: permission denied: doctor talks to the engine itself, so run it as root "
                      "(or as a member of the docker group)")
    engine = Engine(url, min(settings.engine_timeout, 10))
    try:
        version = engine.version()
        managed = engine.managed_containers()
        return f"Docker {version.get('Version')} at {url}; {len(managed)} condor_docker container(s)"
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


def _extra_arguments(settings: Settings) -> str:
    parse_extra_arguments(settings.extra_arguments)
    return f"DOCKER_EXTRA_ARGUMENTS = {settings.extra_arguments or '(empty)'}: every option accepted"


def _log_rotation(lookup: htcondor_checks.Lookup) -> str:
    """The agent's log knobs as the agent reads them at start (a bad one stops it, exit 78)."""
    rotation = Rotation.from_config("CONDOR_DOCKER", lookup)
    when = (f"when {rotation.max_seconds} s old" if rotation.max_seconds
            else f"at {rotation.max_bytes} bytes" if rotation.max_bytes else "never")
    return f"CondorDockerLog rotates {when}, keeping {rotation.max_num} old file(s)"


def _htcondor_lookup() -> htcondor_checks.Lookup:
    """The admin's text of each knob (nothing found where there is no HTCondor here): what the agent reads."""
    return htcondor_text_lookup()


def run_checks(settings: Settings, lookup: htcondor_checks.Lookup) -> list[CheckResult]:
    checks = [("configuration", lambda: "every knob has a usable value"),
              ("DOCKER_EXTRA_ARGUMENTS", lambda: _extra_arguments(settings)),
              ("agent log", lambda: _log_rotation(lookup)),
              ("execute dirs", lambda: _execute_dirs(settings)),
              ("engine", lambda: _engine(settings)),
              ("agent", lambda: _agent(settings))]
    checks += [(name, (lambda probe=probe: probe(lookup))) for name, probe in htcondor_checks.CHECKS]
    return [_check(name, probe) for name, probe in checks]


def _json_refusal(problem: str) -> None:
    """With --json, a refused command line is JSON too: a script parses stdout whatever happened."""
    print(json.dumps({"ok": False, "error": problem, "checks": []}, indent=1))


class _DoctorParser(Parser):
    json_wanted = False

    def error(self, message: str) -> NoReturn:
        if self.json_wanted:
            _json_refusal(message)
        super().error(message)


def main_doctor(argv: list[str]) -> int:
    parser = _DoctorParser(prog="condor_docker doctor", description=__doc__.split("\n\n")[0])
    parser.json_wanted = "--json" in argv
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="override a knob (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_command_line(args.set)
    except OverrideError as err:
        if args.json:
            _json_refusal(str(err))
        print(f"condor_docker doctor: {err}", file=sys.stderr)
        return exitcodes.USAGE
    except SettingsError as err:
        results = [CheckResult("configuration", False, str(err))]
    else:
        results = run_checks(settings, _htcondor_lookup())
    if args.json:
        print(json.dumps({"ok": all(r.ok for r in results), "checks": [asdict(r) for r in results]}, indent=1))
    else:
        print("\n".join(r.line() for r in results))
    return exitcodes.OK if all(r.ok for r in results) else exitcodes.HELD


main = main_doctor
