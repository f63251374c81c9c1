"""`condor_docker status`: one screen for an admin: health, jobs, containers, pulls, cache.

The agent gathers it (op `admin_status`, agent/status.py); this client prints it
as readable tables, or as JSON with `--json` for scripts.  The client imports
only the protocol (no docker, no htcondor2), like the hooks.  Root sees every
job and container; any other user sees their own (the agent checks the
caller's uid from the kernel); pulls and the cache are the machine's, as the
slot ads already publish the cache to the whole pool.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from ..core import exitcodes
from ..core.argparsing import Parser
from ..wire import protocol
from ..wire.ops import AdminStatus
from ..wire.socketpath import default_help

MB = 1024 * 1024


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def _ago(when: float | None, now: float) -> str:
    return "-" if not when else f"{now - when:.0f} s ago"


def render(report: dict, now: float | None = None) -> str:
    """The readable form: a health line, then one table per part (`(none)` when empty)."""
    now = time.time() if now is None else now
    health = report.get("health") or {}
    parts = [f"engine: {'healthy' if health.get('healthy') else 'UNHEALTHY'}"
             + (f", {health['version']}" if health.get("version") else "")
             + (f" ({health['reason']})" if health.get("reason") and not health.get("healthy") else "")]

    def section(title: str, headers: list[str], rows: list[list[Any]], error: str | None = None) -> None:
        body = f"error: {error}" if error else (_table(headers, rows) if rows else "(none)")
        parts.append(f"\n{title}\n{body}")

    section("jobs", ["JOB", "CONTAINER", "UID", "MEMORY_MB", "SINCE"],
            [[j.get("job"), j.get("container"), j.get("uid"), j.get("memory_mb"), _ago(j.get("since"), now)]
             for j in report.get("jobs") or []])
    section("containers", ["NAME", "JOB", "UID", "STATE", "STATUS", "IMAGE"],
            [[c["name"], c["job"], c["uid"], c["state"], c["status"], c["image"]]
             for c in report.get("containers") or []], report.get("containers_error"))
    section("pulls in flight", ["IMAGE", "DONE_MB", "TOTAL_MB", "LAYERS", "SECONDS", "WAITERS"],
            [[p.get("reference"), f"{p.get('bytes_done', 0) / MB:.1f}", f"{p.get('bytes_total', 0) / MB:.1f}",
              f"{p.get('layers_done', 0)}/{p.get('layers', 0)}", p.get("seconds", 0), p.get("waiters", 0)]
             for p in report.get("pulls") or []])
    section(f"image cache ({report.get('cache_total_mb', 0)} MB)", ["IMAGE", "SIZE_MB", "IN_USE", "LAST_USE"],
            [[c["reference"], c["size_mb"], "yes" if c["in_use"] else "no", _ago(c.get("last_use"), now)]
             for c in report.get("cache") or []], report.get("cache_error"))
    return "\n".join(parts) + "\n"


def _agent_hint(err: protocol.AgentUnavailable) -> str:
    """What to do, from why the connection failed: a missing agent and a closed door differ."""
    if isinstance(err.__cause__, PermissionError):
        return ("you may not open the agent's socket: the agent makes its directory 0755 and the socket "
                "0666, so check the --socket path and the modes of its parent directories")
    return "is the agent running (DAEMON_LIST includes CONDOR_DOCKER_AGENT)?"


def main_status(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    parser = Parser(prog="condor_docker status", description="the agent's jobs, containers, pulls, cache and health")
    parser.add_argument("--socket", default=None, help=f"the agent's socket (default: {default_help()})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (also when the agent "
                        "does not answer: {\"ok\": false, \"error\": ...})")
    args = parser.parse_args(argv)
    out = stdout or sys.stdout
    client = protocol.AgentClient(args.socket, timeout=30.0)
    try:
        report = client.call(AdminStatus())
        problem = None if report.get("ok") else \
            f"the agent refused: {(report.get('failure') or {}).get('reason')}"
    except protocol.AgentUnavailable as err:
        problem = f"{err}; {_agent_hint(err)}"
    if problem is not None:
        # a script reading --json gets JSON whatever happened; the person reads stderr
        if args.json:
            out.write(json.dumps({"ok": False, "error": problem}, sort_keys=True) + "\n")
        print(f"condor_docker status: {problem}", file=sys.stderr)
        return exitcodes.UNAVAILABLE
    out.write(json.dumps(report, indent=1, sort_keys=True) + "\n" if args.json else render(report))
    return exitcodes.OK


main = main_status
