"""`condor_docker health --role ROLE`: is this node's role really working?

Not "is a process up" alone, not "is an ad in the collector" alone: an ad
outlives its daemon by minutes, and a live daemon may never have reached the
collector (wrong port, bad token).  So both, plus for an execute node the
condor_docker agent's own answer and `HasDocker = true` in the slot ads (what
matchmaking really uses).  Exit 0 with `ok ...` or 1 with one line saying what
is wrong: a Docker HEALTHCHECK, a Kubernetes exec probe, a Marathon COMMAND
check; `--listen HOST:PORT` serves the same as `GET /healthz` (200 or 503) for
HTTP checks.  (condor_docker/engine/health.py is something else: the agent's view of
the Docker engine.)
"""
from __future__ import annotations

import http.server
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..core.argparsing import Parser

ROLE_DAEMONS = {
    "central-manager": ("condor_master", "condor_shared_port", "condor_collector", "condor_negotiator"),
    "access-point": ("condor_master", "condor_shared_port", "condor_schedd"),
    "execute": ("condor_master", "condor_shared_port", "condor_startd"),
}
# ad type (htcondor2.AdType member name) -> what it is, per role
ROLE_ADS = {
    "central-manager": (("Collector", "collector"), ("Negotiator", "negotiator")),
    "access-point": (("Schedd", "schedd"),),
    "execute": (("Startd", "startd slot"),),
}
AGENT_PROCESS = "condor_docker agent"


@dataclass(frozen=True)
class Observation:
    """What the probes saw; `evaluate` decides from it alone (unit tested)."""
    processes: tuple[str, ...]                 # names (and "condor_docker agent") of live processes
    ads: dict[str, list[dict]]                 # ad type -> ads the collector returned
    collector_error: str = ""
    agent_reply: dict | None = None            # execute: the agent's ping answer
    agent_error: str = ""


def owned_by(name: str, ad_name: str) -> bool:
    """Whether an ad's Name belongs to this node (`name`, `name@host`, `slot1@name@host`)."""
    return re.search(rf"(^|@){re.escape(name)}(@|$)", ad_name or "") is not None


def evaluate(role: str, name: str, seen: Observation) -> tuple[bool, str]:
    missing = [d for d in ROLE_DAEMONS[role] if d not in seen.processes]
    if role == "execute" and AGENT_PROCESS not in seen.processes:
        missing.append(AGENT_PROCESS)
    if missing:
        return False, f"{role} {name}: not running: {', '.join(missing)}"
    if seen.collector_error:
        return False, f"{role} {name}: cannot query the collector: {seen.collector_error}"
    for ad_type, what in ROLE_ADS[role]:
        mine = [ad for ad in seen.ads.get(ad_type, []) if owned_by(name, str(ad.get("Name", "")))]
        if not mine:
            return False, f"{role} {name}: no {what} ad named {name} in the collector (yet)"
    if role == "execute":
        if seen.agent_error:
            return False, f"{role} {name}: the condor_docker agent does not answer: {seen.agent_error}"
        if not (seen.agent_reply or {}).get("healthy", False):
            return False, (f"{role} {name}: the condor_docker agent reports the engine unusable: "
                           f"{(seen.agent_reply or {}).get('reason') or 'no reason given'}")
        slots = [ad for ad in seen.ads.get("Startd", []) if owned_by(name, str(ad.get("Name", "")))]
        if not any(ad.get("HasDocker") is True for ad in slots):
            reason = next((str(ad.get("DockerOfflineReason")) for ad in slots if ad.get("DockerOfflineReason")),
                          "no slot advertises HasDocker = true yet")
            return False, f"{role} {name}: HasDocker is not true: {reason}"
    counts = ", ".join(f"{what} ad" for _, what in ROLE_ADS[role])
    return True, f"{role} {name}: ok ({', '.join(ROLE_DAEMONS[role][1:])} alive; {counts} in the collector)"


def live_processes() -> tuple[str, ...]:
    import psutil
    names = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        info = proc.info
        if info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        names.append(str(info.get("name") or ""))
        argv = info.get("cmdline") or []
        if any(arg.endswith("condor_docker") or arg == "condor_docker.cli" for arg in argv) and "agent" in argv:
            names.append(AGENT_PROCESS)
    return tuple(names)


def query_ads(role: str, timeout: float = 20.0) -> tuple[dict[str, list[dict]], str]:
    import htcondor2
    try:
        collector = htcondor2.Collector(htcondor2.param["COLLECTOR_HOST"])
        ads = {}
        for ad_type, _ in ROLE_ADS[role]:
            found = collector.query(getattr(htcondor2.AdType, ad_type),
                                    projection=["Name", "HasDocker", "DockerOfflineReason"])
            ads[ad_type] = [{key: ad.eval(key) if key in ad else None for key in
                             ("Name", "HasDocker", "DockerOfflineReason")} for ad in found]
        return ads, ""
    except Exception as err:  # htcondor2 raises HTCondorException and friends; all mean "cannot ask"
        return {}, str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def ask_agent(socket_path: str) -> tuple[dict | None, str]:
    from ..wire.ops import Ping
    from ..wire.protocol import AgentClient, AgentUnavailable
    try:
        return AgentClient(socket_path, timeout=10).call(Ping()), ""
    except (AgentUnavailable, OSError) as err:
        return None, str(err)


def observe(role: str) -> tuple[str, Observation]:
    import htcondor2
    name = str(htcondor2.param.get("MASTER_NAME", "") or "")
    processes = live_processes()
    ads, error = query_ads(role)
    reply, agent_error = (None, "")
    if role == "execute":
        from ..wire.socketpath import DEFAULT_SOCKET, KNOB
        reply, agent_error = ask_agent(str(htcondor2.param.get(KNOB, DEFAULT_SOCKET)))
    return name, Observation(processes, ads, error, reply, agent_error)


def check(role: str) -> tuple[bool, str]:
    name, seen = observe(role)
    if not name:
        return False, f"{role}: MASTER_NAME is not set: is CONDOR_CONFIG this node's pool-node config?"
    return evaluate(role, name, seen)


class _Cached:
    """At most one check per `ttl` seconds, however often a probe asks."""

    def __init__(self, probe: Callable[[], tuple[bool, str]], ttl: float = 5.0) -> None:
        self.probe, self.ttl = probe, ttl
        self.lock = threading.Lock()
        self.at, self.value = 0.0, (False, "not checked yet")

    def __call__(self) -> tuple[bool, str]:
        with self.lock:
            if time.monotonic() - self.at > self.ttl:
                self.value, self.at = self.probe(), time.monotonic()
            return self.value


def serve(listen: str, probe: Callable[[], tuple[bool, str]]) -> None:
    host, _, port = listen.rpartition(":")
    cached = _Cached(probe)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] not in ("/healthz", "/"):
                self.send_error(404)
                return
            ok, line = cached()
            body = (line + "\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    # `:PORT` alone is loopback only: the role's health says which daemons run, and a pod's
    # or host's other users need not learn it; `0.0.0.0:PORT` says "every address" explicitly.
    http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler).serve_forever()


def main_health(argv: Iterable[str] | None = None) -> int:
    parser = Parser(prog="condor_docker health", description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=sorted(ROLE_DAEMONS),
                        help="default: CONDOR_DOCKER_POOL_ROLE from this node's config")
    parser.add_argument("--listen", metavar="HOST:PORT", help="serve GET /healthz instead of checking once")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.role:
        import htcondor2
        args.role = str(htcondor2.param.get("CONDOR_DOCKER_POOL_ROLE", "") or "")
        if args.role not in ROLE_DAEMONS:
            print("FAIL no role: give --role, or run where CONDOR_CONFIG is a pool-node config")
            return 1
    if args.listen:
        serve(args.listen, lambda: check(args.role))
        return 0
    ok, line = check(args.role)
    print(line if ok else f"FAIL {line}")
    return 0 if ok else 1


main = main_health
