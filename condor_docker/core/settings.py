"""Every knob, declared once: name, type, default, minimum, one line of doc.

Knobs are read from the HTCondor configuration with `htcondor2.param` (so an admin
sets them in `config.d/` like any HTCondor knob) and validated into a frozen
`Settings`.  Where HTCondor's own docker universe has a knob with the same
meaning we use its name (`DOCKER_VOLUMES`, `DOCKER_SHM_SIZE`, ...); our own knobs
start with `CONDOR_DOCKER_`.  A bad value stops the agent at start with a message
naming the knob, rather than failing jobs one by one later.
"""
from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

EX_USAGE = 64   # sysexits.h: the command line is wrong (a bad `--set KNOB=VALUE`)


class SettingsError(ValueError):
    """A knob has a value we cannot use; the message names the knob and the fix."""


class OverrideError(SettingsError):
    """A `--set KNOB=VALUE` the command cannot use (no `=`, no such knob, a bad value): exit EX_USAGE."""


@dataclass(frozen=True)
class Knob:
    name: str
    kind: str          # "str", "int", "bool", "list", "duration"; "bool_expr", "int_expr": or a KnobExpression
    default: str
    doc: str
    minimum: int | None = None
    # What the generated config.d file writes, when the right value depends on the
    # pool (e.g. "$(EXECUTE)"): a pool's own knobs, never a guess of their values.
    # `default` stays the value used without any HTCondor config (unit tests, `run`).
    config_value: str | None = None

    @property
    def configured(self) -> str:
        """The value config.d/50-condor_docker-execute.conf sets."""
        return self.default if self.config_value is None else self.config_value


KNOBS: tuple[Knob, ...] = (
    Knob("CONDOR_DOCKER_ENGINE_URL", "url", "unix:///var/run/docker.sock",
         "How the agent reaches the Docker engine."),
    Knob("CONDOR_DOCKER_ENGINE_TIMEOUT", "duration", "60",
         "Seconds an ordinary engine call may take (wait and attach have none).", 1),
    Knob("CONDOR_DOCKER_AGENT_SOCKET", "str", "/run/condor_docker/agent.sock",
         "The agent's unix socket; its directory must be owned by root."),
    Knob("CONDOR_DOCKER_STATE_DIR", "str", "/var/lib/condor/condor_docker",
         "Where the agent keeps image last-use times and pull counts.",
         config_value="$(LOCAL_DIR)/condor_docker"),
    Knob("CONDOR_DOCKER_EXECUTE_DIRS", "list", "/var/lib/condor/execute",
         "Directories under which a job's scratch dir must be (HTCondor's EXECUTE; add every "
         "SLOT<N>_EXECUTE you set).", config_value="$(EXECUTE)"),
    Knob("CONDOR_DOCKER_DEFAULT_NETWORK", "str", "nat",
         "Network for jobs with no docker_network_type: nat, none, host or an admin network."),
    Knob("CONDOR_DOCKER_ALLOW_HOST_NETWORK", "bool", "true",
         "Whether docker_network_type = host is allowed."),
    Knob("DOCKER_NETWORKS", "list", "",
         "Admin-defined engine networks a job may name in docker_network_type."),
    Knob("CONDOR_DOCKER_SERVICE_ADDRESS", "str", "0.0.0.0",
         "Host address a job's container_service_names ports are published on (nat and admin "
         "networks); HTCondor's docker universe publishes on every address. 127.0.0.1: only this machine."),
    Knob("DOCKER_VOLUMES", "list", "",
         "Names of admin volumes; each is defined by DOCKER_VOLUME_DIR_<NAME>."),
    Knob("DOCKER_MOUNT_VOLUMES", "list", "",
         "Volumes mounted into every job (others only when DOCKER_VOLUME_DIR_<NAME>_MOUNT_IF is true)."),
    Knob("DOCKER_SHM_SIZE", "int_expr", "0",
         "Size of /dev/shm in bytes; 0 keeps the engine's default. As in HTCondor, a ClassAd "
         "expression is allowed; it may name only Owner, RemoteOwner, RemoteUser, Name, Cpus, Memory.", 0),
    Knob("DOCKER_DROP_ALL_CAPABILITIES", "bool_expr", "true",
         "Drop every Linux capability in the container. As in HTCondor, a ClassAd expression "
         "is allowed; it may name only Owner, RemoteOwner, RemoteUser, Name, Cpus, Memory "
         "(undefined or an error: true)."),
    Knob("CONDOR_DOCKER_ADD_CAPABILITIES", "list", "",
         "Capabilities added back after dropping (HTCondor adds SYS_PTRACE; we add none by default)."),
    Knob("DOCKER_SKIP_IMAGE_ARCH_CHECK", "bool", "false",
         "Run images built for another CPU architecture (by default such a job is held, 22, as HTCondor does)."),
    Knob("DOCKER_LOG_DRIVER_NONE", "bool", "true",
         "Give containers the engine's `none` log driver (the job's output goes to its files only); "
         "false: the engine's default driver also keeps a copy."),
    Knob("DOCKER_RUN_UNDER_INIT", "bool", "true",
         "Run the job under the engine's init, so signals reach it and zombies are reaped."),
    Knob("DOCKER_EXTRA_ARGUMENTS", "str", "",
         "docker-run options added to every container: only --ulimit, --device, --security-opt, --label, --env/-e, --tmpfs, --cap-add, --sysctl, --runtime; any other stops the agent, naming it."),
    Knob("CONDOR_DOCKER_PIDS_LIMIT", "int", "4096",
         "Most processes a job may have; 0 for no limit.", 0),
    Knob("CONDOR_DOCKER_MAX_CPUS", "int", "0",
         "Most Cpus a single container may get; 0 means the machine's cores.", 0),
    Knob("CONDOR_DOCKER_MAX_MEMORY_MB", "int", "0",
         "Most memory a single container may get; 0 means the machine's memory.", 0),
    Knob("CONDOR_DOCKER_MAX_DISK_MB", "int", "0",
         "Most disk a job may write when the slot's Disk is not known from a startd (caps); "
         "0 means the size of the execute dir's filesystem.", 0),
    Knob("CONDOR_DOCKER_SLOT_SOURCE", "str", "startd",
         "Where a job's Cpus/Memory/Disk/GPUs come from: startd (the local startd's slot ad; its last answer "
         "while it is silent, else the job goes back to idle) or caps (CONDOR_DOCKER_MAX_*, no GPUs)."),
    Knob("CONDOR_DOCKER_REQUIRE_STARTER", "bool", "true",
         "Refuse a job whose process is not a descendant of the condor_starter of its scratch dir "
         "(false only where no real starter runs the jobs, e.g. a test harness)."),
    Knob("CONDOR_DOCKER_TMP_SIZE_MB", "int", "1024",
         "Size of each job's private /tmp and /var/tmp (tmpfs, counted in the job's memory).", 1),
    Knob("CONDOR_DOCKER_MAX_CONNECTIONS", "int", "1024",
         "Most connections the agent serves at once (running jobs hold one each).", 16),
    Knob("CONDOR_DOCKER_MAX_CONNECTIONS_PER_UID", "int", "256",
         "Most connections one uid may hold open to the agent at once.", 4),
    Knob("CONDOR_DOCKER_REQUEST_TIMEOUT", "duration", "10",
         "Seconds a client has to send its whole request once connected.", 1),
    Knob("CONDOR_DOCKER_KILL_GRACE", "duration", "10",
         "Seconds between the soft kill and the hard kill when the job does not say.", 0),
    Knob("CONDOR_DOCKER_PULL_TIMEOUT", "duration", "1800",
         "Seconds a pull may take in all before it is abandoned (the job is requeued).", 1),
    Knob("CONDOR_DOCKER_PULL_STALL_TIMEOUT", "duration", "120",
         "Seconds a pull may go without progress before it is abandoned.", 1),
    Knob("CONDOR_DOCKER_MAX_REQUEUES", "int", "3",
         "Transient failures of one job before it is held instead of requeued.", 0),
    Knob("DOCKER_IMAGE_CACHE_SIZE", "int", "20",
         "Most images kept in the cache (least recently used ones go first).", 1),
    Knob("CONDOR_DOCKER_IMAGE_CACHE_MB", "int", "20480",
         "Most megabytes of images kept in the cache.", 1),
    Knob("CONDOR_DOCKER_PINNED_IMAGES", "list", "",
         "Images the cache never removes."),
    Knob("CONDOR_DOCKER_GC_FOREIGN_IMAGES", "bool", "false",
         "Whether the cache may remove images this product did not pull."),
    Knob("DOCKER_TRUST_LOCAL_IMAGES", "bool", "false",
         "Whether a job may use an image that exists only on this machine (loaded, not pulled)."),
    Knob("CONDOR_DOCKER_ALLOWED_REGISTRIES", "list", "",
         "Registries (host[:port]; docker.io is Docker Hub) a job's image may come from; empty: any. An image "
         "from any other registry is held (21) at prepare."),
    Knob("CONDOR_DOCKER_MAX_IMAGE_SIZE_MB", "int", "0",
         "Largest image one pull may bring, in MB (its layers as they download, then the pulled image); "
         "0: no cap. A pull over it is stopped and the job held (20).", 0),
    Knob("CONDOR_DOCKER_CREDENTIAL_REGISTRIES", "list", "",
         "Registries (host[:port]; docker.io is Docker Hub) that get the agent's (root's) docker credentials "
         "(~/.docker/config.json) on a pull; a pull from any other registry is anonymous."),
    Knob("DOCKER_PERFORM_TEST", "bool", "true",
         "Run a tiny container at agent start and after the engine recovers."),
    Knob("CONDOR_DOCKER_TEST_IMAGE", "str", "",
         "A locally present image with `true` for the self-test; empty: the built-in one "
         "(129 bytes, loaded into the engine when missing, no registry needed)."),
    Knob("CONDOR_DOCKER_REAP_PERIOD", "duration", "30",
         "Seconds between sweeps for containers whose job is gone.", 1),
    Knob("CONDOR_DOCKER_REAP_GRACE", "duration", "60",
         "Seconds a container may exist untracked before a sweep removes it.", 0),
    Knob("CONDOR_DOCKER_HEALTH_PERIOD", "duration", "15",
         "Seconds between the agent's engine health checks.", 1),
    Knob("CONDOR_DOCKER_AGENT_ID", "str", "",
         "Names this agent's containers (label org.condor_docker.agent) so that agents sharing "
         "one engine never reap each other's; empty means the host name plus a hash of the execute dirs."),
    Knob("CONDOR_DOCKER_JOB_CGROUP_PREFIX", "str", "/htcondor",
         "Create a container under its launcher's job cgroup when that is under this prefix (HTCondor's "
         "BASE_CGROUP; cgroupfs driver only: on v1 the job cgroup, on v2 the slot's slice), so HTCondor's "
         "accounting covers it; empty: never."),
    Knob("CONDOR_DOCKER_DISK_CHECK_PERIOD", "duration", "30",
         "Seconds between checks of a running job's disk use (scratch dir + writable layer) against its Disk.", 1),
)

_BY_NAME = {knob.name: knob for knob in KNOBS}
_VOLUME_DIR = re.compile(r"^DOCKER_VOLUME_DIR_(\w+?)(_MOUNT_IF)?$")


@dataclass(frozen=True)
class Volume:
    """An admin volume: DOCKER_VOLUME_DIR_<NAME> = source[:target][:ro]."""
    name: str
    source: str
    target: str
    read_only: bool
    mount_if: str | None  # a ClassAd expression over MOUNT_IF_ATTRIBUTES (a veto), or None


@dataclass(frozen=True)
class Settings:
    """Validated knob values; build with load_settings(), never by hand."""

    engine_url: str
    engine_timeout: float
    agent_socket: str
    state_dir: str
    execute_dirs: tuple[str, ...]
    default_network: str
    allow_host_network: bool
    networks: tuple[str, ...]
    service_address: str
    volumes: tuple[Volume, ...]
    mount_volumes: tuple[str, ...]
    shm_size: int | KnobExpression
    drop_all_capabilities: bool | KnobExpression
    add_capabilities: tuple[str, ...]
    skip_image_arch_check: bool
    log_driver_none: bool
    run_under_init: bool
    extra_arguments: str
    pids_limit: int
    max_cpus: int
    max_memory_mb: int
    max_disk_mb: int
    slot_source: str
    require_starter: bool
    tmp_size_mb: int
    max_connections: int
    max_connections_per_uid: int
    request_timeout: float
    kill_grace: float
    pull_timeout: float
    pull_stall_timeout: float
    max_requeues: int
    image_cache_size: int
    image_cache_mb: int
    pinned_images: tuple[str, ...]
    gc_foreign_images: bool
    trust_local_images: bool
    allowed_registries: tuple[str, ...]
    max_image_size_mb: int
    credential_registries: tuple[str, ...]
    perform_test: bool
    test_image: str
    reap_period: float
    reap_grace: float
    health_period: float
    agent_id: str
    job_cgroup_prefix: str
    disk_check_period: float

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


_PREFIXES = ("CONDOR_DOCKER_", "DOCKER_")


def field_name(knob_name: str) -> str:
    """The Settings field of a knob: its name without the prefix, lower case."""
    for prefix in _PREFIXES:
        if knob_name.startswith(prefix):
            return knob_name[len(prefix):].lower()
    raise AssertionError(knob_name)


MAX_DURATION_S = 10 * 365 * 86400.0   # nan, inf and 1e400 are not durations; nor is a century


def seconds(text: str, positive: bool = False, most: float = MAX_DURATION_S) -> float:
    """An argparse type for a command-line duration: finite, not negative, at most `most` seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    low_ok = value > 0 if positive else value >= 0
    if not math.isfinite(value) or not low_ok or value > most:
        low = "above 0" if positive else "from 0"
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds {low} to {most:.0f}")
    return value


def positive_seconds(text: str) -> float:
    """A duration that must not be 0: a socket timeout (0 is non-blocking) or a polling period (0 spins)."""
    return seconds(text, positive=True)


def _convert(knob: Knob, raw: str) -> Any:
    text = raw.strip()
    if knob.kind == "str":
        return text
    if knob.kind == "list":
        return tuple(item for item in re.split(r"[\s,]+", text) if item)
    if knob.kind == "url":
        return check_engine_url(knob.name, text)
    if knob.kind in ("bool", "bool_expr"):
        if text.lower() in ("true", "yes", "1", "on"):
            return True
        if text.lower() in ("false", "no", "0", "off"):
            return False
        if knob.kind == "bool_expr":
            return KnobExpression(knob.name, check_vouched_expression(knob.name, text, "true or false"), "bool")
        raise SettingsError(f"{knob.name} = {raw!r} is not a boolean: write true or false")
    if knob.kind == "int_expr":
        if not re.fullmatch(r"[+-]?\d+", text):
            return KnobExpression(knob.name, check_vouched_expression(knob.name, text, "a whole number"), "int")
        knob = dataclasses.replace(knob, kind="int")
    try:
        number = float(text.rstrip("s")) if knob.kind == "duration" else int(text)
        if not math.isfinite(number) or number > MAX_DURATION_S:
            raise ValueError(text)
    except ValueError:
        unit = "a number of seconds" if knob.kind == "duration" else "a whole number"
        raise SettingsError(f"{knob.name} = {raw!r} is not {unit}: {knob.doc}") from None
    if knob.minimum is not None and number < knob.minimum:
        raise SettingsError(f"{knob.name} = {raw!r} is below its minimum {knob.minimum}: {knob.doc}")
    return number


_ENGINE_SCHEMES = ("unix", "tcp", "http", "https", "ssh")


def check_engine_url(name: str, text: str) -> str:
    """An engine address the Docker SDK can use: unix:///<path>, or tcp|http|https|ssh://<host>[:<port>].

    Checked here, where the knob is read, so that a typo is one line naming it at
    every start and reconfig, not a ValueError deep in the SDK at the first call.
    """
    fix = "write unix:///var/run/docker.sock (or unix:///run/podman/podman.sock), or tcp://<host>:<port>"
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in _ENGINE_SCHEMES:
        raise SettingsError(f"{name} = {text!r} is not an engine address: {fix}")
    if scheme.lower() == "unix":
        if not rest.startswith("/") or "\0" in rest:
            raise SettingsError(f"{name} = {text!r} names no absolute socket path: {fix}")
        return text
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        raise SettingsError(f"{name} = {text!r} has no valid host and port: {fix}") from None
    if not parts.hostname or (port is not None and not 0 < port < 65536):
        raise SettingsError(f"{name} = {text!r} has no valid host and port: {fix}")
    return text


# What an admin's ClassAd expression (DOCKER_VOLUME_DIR_<N>_MOUNT_IF, DOCKER_DROP_ALL_CAPABILITIES,
# DOCKER_SHM_SIZE) may name: attributes the agent can vouch for, never the job-writable .job.ad
# (a job would write Owner = "alice" and get alice's volume).  Owner comes from the caller's uid
# (the kernel), the rest from the startd's ad of the job's slot.
MOUNT_IF_ATTRIBUTES = ("Owner", "RemoteOwner", "RemoteUser", "Name", "Cpus", "Memory")


@dataclass(frozen=True)
class KnobExpression:
    """A knob HTCondor evaluates per job (param_boolean/param_longlong over the ads): its text and type.

    core/spec.py evaluates it over the vouched attributes of each job (core/ads.evaluate_over).
    """
    knob: str
    text: str
    kind: str       # "bool" or "int"


def check_vouched_expression(knob: str, expression: str, literal: str = "") -> str:
    """The expression, if it parses and names only MOUNT_IF_ATTRIBUTES; else SettingsError naming them
    (and `literal`, what else the knob takes: "true or false", "a whole number")."""
    import classad2

    try:
        tree = classad2.ExprTree(expression)
        names = classad2.ClassAd().externalRefs(tree)
    except Exception as err:
        raise SettingsError(f"{knob} = {expression!r} is not {literal + ' or ' if literal else ''}"
                            f"a ClassAd expression: {err}") from None
    allowed = {name.lower() for name in MOUNT_IF_ATTRIBUTES}
    foreign = sorted({name for name in names if name and name.split(".")[-1].lower() not in allowed})
    if foreign:
        raise SettingsError(f"{knob} = {expression!r} names {', '.join(foreign)}, which a job can write: "
                            f"{'write ' + literal + ', or ' if literal else ''}"
                            f"use only {', '.join(MOUNT_IF_ATTRIBUTES)} (what the agent vouches for)")
    return expression


def _volumes(lookup: Callable[[str], str | None], names: tuple[str, ...]) -> tuple[Volume, ...]:
    volumes = []
    for name in names:
        knob = f"DOCKER_VOLUME_DIR_{name}"
        raw = lookup(knob)
        if not raw:
            raise SettingsError(f"DOCKER_VOLUMES names {name} but {knob} is not set: "
                                f"set {knob} = /host/path[:/container/path][:ro]")
        parts = raw.strip().split(":")
        read_only = parts[-1] in ("ro", "rw") and parts.pop() == "ro"
        if not 1 <= len(parts) <= 2 or not all(p.startswith("/") for p in parts):
            raise SettingsError(f"{knob} = {raw!r}: write /host/path[:/container/path][:ro]")
        mount_if = lookup(f"{knob}_MOUNT_IF")
        if mount_if is not None and mount_if.strip():
            mount_if = check_vouched_expression(f"{knob}_MOUNT_IF", mount_if)
        else:
            mount_if = None
        volumes.append(Volume(name, parts[0], parts[-1], read_only, mount_if))
    return tuple(volumes)


# HTCondor docker-universe knobs that condor_docker does not honour: a site that turned one on
# must not find it silently read differently (issue 19), so the agent stops at start naming it.
REFUSED_WHEN_TRUE = {
    "DOCKER_RUN_AS_ROOT": "condor_docker never runs a job as root in its container "
                          "(HTCondor's own docker universe would)",
    "DOCKER_MAP_ALL_GPUS": "condor_docker gives a container only the GPUs the startd assigned to its slot "
                           "(HTCondor's own docker universe would map every GPU of the machine)",
}


def load_settings(lookup: Callable[[str], str | None] | None = None,
                  overrides: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from a knob lookup (default: htcondor2.param) and overrides.

    `overrides` take precedence; tests and the local runner use them so nothing
    depends on a machine's HTCondor configuration.
    """
    base = lookup or _param_lookup()
    overrides = dict(overrides or {})

    def get(name: str) -> str | None:
        if name in overrides:
            return overrides[name]
        return base(name)

    values: dict[str, Any] = {}
    for knob in KNOBS:
        raw = get(knob.name)
        values[field_name(knob.name)] = _convert(knob, knob.default if raw is None else raw)
    values["volumes"] = _volumes(get, values["volumes"])
    unknown = set(values["mount_volumes"]) - {v.name for v in values["volumes"]}
    if unknown:
        raise SettingsError(f"DOCKER_MOUNT_VOLUMES names {', '.join(sorted(unknown))} "
                            "which DOCKER_VOLUMES does not define: add them to DOCKER_VOLUMES")
    if values["default_network"] not in ("nat", "none", "host") + values["networks"]:
        raise SettingsError(f"CONDOR_DOCKER_DEFAULT_NETWORK = {values['default_network']!r}: "
                            "use nat, none, host or a network listed in DOCKER_NETWORKS")
    try:
        ipaddress.ip_address(values["service_address"])
    except ValueError:
        raise SettingsError(f"CONDOR_DOCKER_SERVICE_ADDRESS = {values['service_address']!r} is not an IP address: "
                            "write e.g. 0.0.0.0 (every address) or 127.0.0.1 (this machine only)") from None
    for knob, why in REFUSED_WHEN_TRUE.items():
        value = get(knob)
        if value is not None and str(value).strip().lower() not in ("false", "no", "0", "off", ""):
            raise SettingsError(f"{knob} = {value!r}: {why}: remove it or set it false")
    if values["slot_source"] not in ("startd", "caps"):
        raise SettingsError(f"CONDOR_DOCKER_SLOT_SOURCE = {values['slot_source']!r}: use startd or caps")
    values["allowed_registries"] = _registries("CONDOR_DOCKER_ALLOWED_REGISTRIES", values["allowed_registries"])
    values["credential_registries"] = _registries("CONDOR_DOCKER_CREDENTIAL_REGISTRIES",
                                                  values["credential_registries"])
    values["agent_id"] = values["agent_id"] or default_agent_id(values["execute_dirs"])
    return Settings(**values)


_VOLUME_DIR_KNOB = re.compile(r"DOCKER_VOLUME_DIR_\w+")   # per volume, named by DOCKER_VOLUMES


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """The one `--set KNOB=VALUE` parser: each pair names a knob and gives a value that knob takes.

    A bad pair raises OverrideError with one line naming the problem and the fix.
    """
    known = {knob.name: knob for knob in KNOBS}
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, found, value = pair.partition("=")
        name = name.strip()
        if not found or not name:
            raise OverrideError(f"--set {_shown(pair)}: write --set KNOB=VALUE, e.g. --set CONDOR_DOCKER_MAX_REQUEUES=3")
        name = name.upper() if name.upper() in known else name   # HTCondor knob names are case-insensitive
        knob = known.get(name)
        if knob is None and not _VOLUME_DIR_KNOB.fullmatch(name):
            raise OverrideError(f"--set {_shown(pair)}: {_shown(name, quote=False)} is not a condor_docker knob"
                                f"{_did_you_mean(name, known)} "
                                "(`condor_docker config knob-table` lists them)")
        if knob is not None:
            try:
                _convert(knob, value)
            except SettingsError as err:
                raise OverrideError(f"--set {_shown(pair)}: {str(err).replace(repr(value), _shown(value))}") from None
        overrides[name] = value
    return overrides


def _shown(text: str, quote: bool = True, limit: int = 80) -> str:
    """A value as an error line repeats it: cut short, so a huge argument still gives one readable line."""
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} characters)"
    return repr(text) if quote else text


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`; did you mean X?` for a near miss of a knob name, as for submit commands."""
    import difflib
    guess = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    return f"; did you mean {guess[0]}?" if guess else ""


def settings_from_command_line(pairs: Iterable[str], lookup: Callable[[str], str | None] | None = None,
                               defaults: Mapping[str, str] | None = None) -> Settings:
    """Settings with a command's `--set` pairs over the configuration (and `defaults` under them).

    A bad pair, or a pair that makes the knobs disagree (the configuration alone
    is usable), raises OverrideError; a configuration that is bad by itself, SettingsError.
    """
    overrides = parse_overrides(pairs)
    base = dict(defaults or {})
    try:
        return load_settings(lookup, {**base, **overrides})
    except SettingsError as err:
        if not overrides:
            raise
        try:
            load_settings(lookup, base)
        except SettingsError:
            raise err from None
        raise OverrideError(f"--set: {err}") from None


def _registries(knob: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Registry names as the image cache compares them (docker.io for index.docker.io; host in lower case)."""
    from .imageref import canonical_registry
    try:
        return tuple(dict.fromkeys(canonical_registry(name) for name in names))
    except ValueError as err:
        raise SettingsError(f"{knob}: {err}: write registry hosts, e.g. registry.example.org:5000 or docker.io") from None


def default_agent_id(execute_dirs: tuple[str, ...]) -> str:
    """Host name plus a hash of the execute dirs: distinct for execute containers that
    share one host engine (each has its own execute dir), stable across agent restarts."""
    import hashlib
    import socket
    digest = hashlib.sha256("\n".join(execute_dirs).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}-{digest}"


# A name of our own whose value is "$(KNOB)": read through it, a knob comes back as the text
# the admin wrote (macros expanded), whatever type HTCondor's param table gives the knob.
_RAW_READER = "CONDOR_DOCKER_INTERNAL_RAW_VALUE"


def _param_lookup() -> Callable[[str], str | None]:
    """The admin's text of each knob, from HTCondor's configuration.

    htcondor2.param converts the knobs HTCondor itself types (DOCKER_RUN_UNDER_INIT,
    DOCKER_DROP_ALL_CAPABILITIES, DOCKER_IMAGE_CACHE_SIZE, ...): `maybe` or an expression
    comes back as the table's default, so a typo would be silently read as something
    else and a per-job expression lost.  Reading "$(KNOB)" through an untyped name of our
    own gives the text, which _convert checks like any other.
    """
    import htcondor2  # only where the HTCondor configuration is wanted

    param = htcondor2.param

    def lookup(name: str) -> str | None:
        if name not in param:
            return None
        param[_RAW_READER] = f"$({name})"
        try:
            value = param.get(_RAW_READER)
        finally:
            del param[_RAW_READER]
        return "" if value is None else str(value)

    return lookup


def htcondor_text_lookup() -> Callable[[str], str | None]:
    """The admin's text of any HTCondor knob (as `_param_lookup` reads it); unset where it cannot be read.

    For knobs outside the table that we read too (MAX_CONDOR_DOCKER_LOG, MAX_DEFAULT_LOG, ...):
    the agent at start, at condor_reconfig, and doctor all read them through this one reader.
    """
    try:
        raw = _param_lookup()
    except ImportError:
        return lambda _name: None

    def lookup(name: str) -> str | None:
        try:
            return raw(name)
        except Exception:   # noqa: BLE001 - HTCondor's reader: an unreadable knob is an unset one
            return None
    return lookup


def default_settings(**overrides: str) -> Settings:
    """Settings from the defaults alone (plus knob overrides), ignoring the machine's config."""
    return load_settings(lambda _name: None, overrides)


def knob_table() -> list[Knob]:
    """For the install guide's knob table and config.d generation."""
    return list(KNOBS)
