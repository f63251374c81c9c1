"""The pure mapping: (JobRequest, Settings) -> ContainerSpec.

No I/O and no engine here, so every rule is unit tested on its own.  The spec
says what HTCondor's docker universe does (shares = 100 x Cpus, memory = the
slot's Memory with no extra swap, scratch dir mounted at the same path and used
as working dir, private /tmp and /var/tmp (size-limited tmpfs), the job's uid:gid, --init, all
capabilities dropped, no-new-privileges) plus what it lacks (a pids limit,
labels that let the agent find and reap its containers).  engine/client.py alone
turns the spec into Docker SDK arguments.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from . import ads, gpus
from .failures import Code, Failure
from .labels import (
    AGENT_LABEL,
    CGROUP_PARENT_LABEL,
    CLUSTER_LABEL,
    IMAGE_LABEL,
    LABEL_PREFIX,
    LAUNCHER_PID_LABEL,
    LAUNCHER_START_LABEL,
    MANAGED_LABEL,
    OWNER_LABEL,
    PROC_LABEL,
    SCRATCH_DIR_LABEL,
    SELFTEST_LABEL,
    SLOT_LABEL,
    STARTER_PID_LABEL,
    UID_LABEL,
)
from .request import JobRequest
from .settings import KnobExpression, Settings, SettingsError

# The starter's environment that makes no sense inside an image, or that belongs
# to the host (paths into the host's filesystem, our own internals).
_HOST_ONLY_ENV = {"PATH", "HOME", "PWD", "OLDPWD", "SHLVL", "_", "TERM", "SHELL", "USER",
                  "LOGNAME", "MAIL", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH",
                  "PYTHONHOME", "VIRTUAL_ENV"}
_HOST_ONLY_PREFIXES = ("_CONDOR_ANCESTOR_", "CONDOR_DOCKER_")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Extras:
    """What DOCKER_EXTRA_ARGUMENTS may add; see parse_extra_arguments."""
    ulimits: tuple[tuple[str, int, int], ...] = ()
    devices: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()
    cap_add: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    runtime: str | None = None


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the engine needs to create one job's container."""
    name: str
    image: str
    entrypoint: tuple[str, ...] | None      # None: the image's entrypoint
    command: tuple[str, ...] | None         # None: the image's default command
    user: str                               # "uid:gid"
    group_add: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    working_dir: str
    mounts: tuple[Mount, ...]
    labels: tuple[tuple[str, str], ...]
    hostname: str
    network_mode: str
    cpu_shares: int
    memory_mb: int
    pids_limit: int
    init: bool
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]
    security_opt: tuple[str, ...]
    shm_size: int
    stdin_open: bool
    extras: Extras = field(default_factory=Extras)
    device_requests: tuple[gpus.DeviceRequest, ...] = ()   # exactly the job's assigned GPUs
    cgroup_parent: str | None = None        # the launcher's job cgroup (agent only; see agent/launcher_watch.py)
    published: tuple[int, ...] = ()         # container ports the engine publishes on publish_address
    publish_address: str = ""
    services: tuple[tuple[str, int], ...] = ()   # container_service_names: (name, container port)
    log_driver_none: bool = True            # DOCKER_LOG_DRIVER_NONE

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * 1024 * 1024

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(LABEL_PREFIX + key)


def container_name(cluster: int, proc: int, slot: str, uid: int | None = None) -> str:
    """`HTCJob_<cluster>_<proc>_<slot>_u<uid>`, with anything the engine refuses made `_`.

    A slot runs one job at a time, so the name is unique on the machine.  The
    uid is part of it because ClusterId/ProcId/slot come from files the job can
    write: one user claiming another's job id gets a different name, so it can
    never make the other user's launch find its name taken.  A leftover of an
    earlier attempt with the same name is removed before create.
    """
    suffix = f"_u{uid}" if uid is not None else ""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"HTCJob_{cluster}_{proc}_{slot}{suffix}")


def hostname(request: JobRequest) -> str:
    """Like HTCondor's `<owner>-<cluster>.<proc>-<machine>`, cut to a legal host name."""
    raw = f"{request.owner}-{request.cluster}.{request.proc}-{request.machine}"
    return re.sub(r"[^A-Za-z0-9.-]", "-", raw)[:63].strip("-.") or "condor-job"


def _command(request: JobRequest) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """(entrypoint, command): a transferred executable runs as ./<basename> in the scratch dir."""
    if request.cmd is None:
        return None, (request.args or None)
    executable = request.cmd
    if request.transfer_executable:
        executable = "./" + os.path.basename(executable)
    if request.override_entrypoint:
        return (executable,), request.args
    return None, (executable,) + request.args


def _environment(request: JobRequest, extras: Extras) -> tuple[tuple[str, str], ...]:
    env = dict(extras.environment)
    env.update(request.environment)
    for name, value in request.starter_env:
        if name in _HOST_ONLY_ENV or name.startswith(_HOST_ONLY_PREFIXES):
            continue
        env[name] = value
    env.update(gpus.container_environment(request.gpus))   # host GPU indices renumbered as seen inside
    return tuple(env.items())


def _mount_if(volume_expr: str | None, vouched: tuple[tuple[str, str], ...], knob: str) -> bool:
    """HTCondor's veto: a listed volume is mounted unless its MOUNT_IF is not true.

    Evaluated over the attributes the agent vouches for only (settings.MOUNT_IF_ATTRIBUTES),
    never over the job-writable .job.ad. HTCondor evaluates it with the machine ad as MY
    and the job ad as TARGET, an unscoped name found in either: so `TARGET.Owner`,
    `Owner` and `MY.Name` all read here what they read there (the job side holds Owner).
    """
    if volume_expr is None:
        return True
    try:
        return ads.evaluate_over(volume_expr, vouched) is True
    except Exception as err:
        raise SettingsError(f"{knob}_MOUNT_IF = {volume_expr!r} is not a ClassAd expression: {err}") from err


def knob_value(value: Any, vouched: tuple[tuple[str, Any], ...]) -> Any:
    """A knob's value for this job: a KnobExpression (HTCondor evaluates these knobs per job)
    evaluated over the vouched attributes; undefined, an error or the wrong type gives
    HTCondor's default (DOCKER_DROP_ALL_CAPABILITIES true, DOCKER_SHM_SIZE unset)."""
    if not isinstance(value, KnobExpression):
        return value
    try:
        result = ads.evaluate_over(value.text, vouched)
    except Exception:
        result = None
    if value.kind == "bool":
        return result if isinstance(result, bool) else True
    if isinstance(result, bool) or not isinstance(result, (int, float)) or not math.isfinite(result):
        return 0
    return max(0, int(result))


PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp")


def private_tmpfs(settings: Settings) -> tuple[tuple[str, str], ...]:
    """The job's private /tmp and /var/tmp: tmpfs mounts with a size limit.

    Not directories of the scratch dir: the job owns that and could swap
    `<scratch>/tmp` for a link to another job's /tmp between create and start
    (the engine follows links when it mounts).  A tmpfs is made by the engine
    for this container alone and goes away with it; its pages count in the
    container's memory limit.
    """
    options = f"rw,exec,nosuid,nodev,size={settings.tmp_size_mb}m,mode=1777"
    return tuple((target, options) for target in PRIVATE_TMP_DIRS)


def _mounts(request: JobRequest, settings: Settings) -> tuple[Mount, ...]:
    """The scratch dir (its path cannot change: it sits in a root-owned execute dir) plus admin volumes."""
    scratch = request.scratch_dir
    mounts = [Mount(scratch, scratch)]
    for volume in settings.volumes:
        if volume.name in settings.mount_volumes and _mount_if(
                volume.mount_if, request.vouched, f"DOCKER_VOLUME_DIR_{volume.name}"):
            mounts.append(Mount(volume.source, volume.target, volume.read_only))
    return tuple(mounts)


def network_mode(request: JobRequest, settings: Settings) -> str:
    """The engine network for DockerNetworkType; a refused network is a HOLD."""
    wanted = (request.network_type or settings.default_network).strip()
    if wanted == "none":
        return "none"
    if wanted == "nat":
        return "bridge"
    if wanted == "host":
        if not settings.allow_host_network:
            raise Failure(Code.NETWORK_NOT_ALLOWED,
                          "docker_network_type = host is not allowed on this machine: use nat or none")
        return "host"
    if wanted in settings.networks:
        return wanted
    offered = ", ".join(("nat", "none") + (("host",) if settings.allow_host_network else ()) + settings.networks)
    raise Failure(Code.NETWORK_NOT_ALLOWED,
                  f"docker_network_type = {wanted!r} is not a network of this machine: use one of {offered}")


def published_ports(request: JobRequest, network: str) -> tuple[int, ...]:
    """The container ports to publish for the job's services (container_service_names).

    On a bridge (nat or an admin network) each gets a host port the engine picks; with
    host networking the service already listens on the host, so nothing is published (its
    host port is its own); without a network nothing can reach it: a hold naming the fix.
    """
    if not request.services:
        return ()
    if network == "none":
        raise Failure(Code.BAD_JOB_AD, "container_service_names needs a network, but the job runs with "
                                       "docker_network_type = none: use nat (or an admin network)")
    if network == "host":
        return ()
    return tuple(dict.fromkeys(port for _, port in request.services))


def _labels(request: JobRequest, extras: Extras, agent_id: str) -> tuple[tuple[str, str], ...]:
    ours = {
        MANAGED_LABEL: "true",
        AGENT_LABEL: agent_id,
        CLUSTER_LABEL: str(request.cluster),
        PROC_LABEL: str(request.proc),
        SLOT_LABEL: request.slot,
        OWNER_LABEL: request.owner,
        UID_LABEL: str(request.uid),
        SCRATCH_DIR_LABEL: request.scratch_dir,
        IMAGE_LABEL: request.image,
        # set later by the agent when it has them; empty here so that an image's own LABEL of
        # the same name (the engine merges image labels in) can never speak for the agent:
        # a `launcher_pid` of 1 would keep the reaper away forever, a `cgroup_parent` move the
        # container on reattach (trust round 2, item 13)
        LAUNCHER_PID_LABEL: "",
        LAUNCHER_START_LABEL: "",
        STARTER_PID_LABEL: "",
        CGROUP_PARENT_LABEL: "",
        SELFTEST_LABEL: "",
    }
    labels = dict(extras.labels)
    labels.update(ours)
    return tuple(labels.items())


def build_spec(request: JobRequest, settings: Settings) -> ContainerSpec:
    """The container for this job on this machine: pure, deterministic, no engine."""
    if request.uid == 0 or request.gid == 0:
        raise Failure(Code.POLICY_REFUSED, "docker jobs never run as root (uid or gid 0): submit as an ordinary user")
    extras = parse_extra_arguments(settings.extra_arguments)
    extras = dataclasses.replace(extras, tmpfs=private_tmpfs(settings) + tuple(
        (target, options) for target, options in extras.tmpfs if target not in PRIVATE_TMP_DIRS))
    cpus = min(request.cpus, settings.max_cpus) if settings.max_cpus else request.cpus
    memory = min(request.memory_mb, settings.max_memory_mb) if settings.max_memory_mb else request.memory_mb
    entrypoint, command = _command(request)
    cap_add = tuple(dict.fromkeys(settings.add_capabilities + extras.cap_add))
    network = network_mode(request, settings)
    return ContainerSpec(
        name=container_name(request.cluster, request.proc, request.slot, request.uid),
        image=request.image,
        entrypoint=entrypoint,
        command=command,
        user=f"{request.uid}:{request.gid}",
        group_add=(str(request.gid),),
        environment=_environment(request, extras),
        working_dir=request.scratch_dir,
        mounts=_mounts(request, settings),
        labels=_labels(request, extras, settings.agent_id),
        hostname=hostname(request),
        network_mode=network,
        cpu_shares=max(2, 100 * cpus),
        memory_mb=memory,
        pids_limit=settings.pids_limit,
        init=settings.run_under_init,
        cap_drop=("ALL",) if knob_value(settings.drop_all_capabilities, request.vouched) else (),
        cap_add=cap_add,
        security_opt=("no-new-privileges",) + extras.security_opt,
        shm_size=knob_value(settings.shm_size, request.vouched),
        stdin_open=request.has_input,
        extras=extras,
        device_requests=gpus.device_requests(request.gpus),
        published=published_ports(request, network),
        publish_address=settings.service_address,
        services=request.services,
        log_driver_none=settings.log_driver_none,
    )


def _pair(option: str, value: str, sep: str = "=") -> tuple[str, str]:
    key, found, rest = value.partition(sep)
    if not found or not key:
        raise SettingsError(f"DOCKER_EXTRA_ARGUMENTS: {option} {value!r} must be KEY{sep}VALUE")
    return key, rest


def _ulimit(value: str) -> tuple[str, int, int]:
    name, limits = _pair("--ulimit", value)
    soft, _, hard = limits.partition(":")
    try:
        return name, int(soft), int(hard or soft)
    except ValueError:
        raise SettingsError(f"DOCKER_EXTRA_ARGUMENTS: --ulimit {value!r} must be NAME=SOFT[:HARD]") from None


_EXTRA_OPTIONS = ("--ulimit", "--device", "--security-opt", "--label", "--env", "-e",
                  "--tmpfs", "--cap-add", "--sysctl", "--runtime")


def parse_extra_arguments(text: str) -> Extras:
    """Parse the docker-run options an admin may add with DOCKER_EXTRA_ARGUMENTS.

    Only options that cannot widen the job's own privileges beyond what the admin
    writes are accepted; anything else is a SettingsError naming the option, so a
    typo stops the agent instead of being ignored.
    """
    try:
        words = shlex.split(text or "")
    except ValueError as err:
        raise SettingsError(f"DOCKER_EXTRA_ARGUMENTS = {text!r}: {err}") from err
    found: dict[str, list] = {}
    index = 0
    while index < len(words):
        option, _, value = words[index].partition("=") if words[index].startswith("--") else (words[index], "", "")
        if option not in _EXTRA_OPTIONS:
            raise SettingsError(f"DOCKER_EXTRA_ARGUMENTS: {words[index]!r} is not supported: "
                                f"use only {', '.join(_EXTRA_OPTIONS)}")
        if not value:
            index += 1
            if index >= len(words):
                raise SettingsError(f"DOCKER_EXTRA_ARGUMENTS: {option} needs a value")
            value = words[index]
        found.setdefault("--env" if option == "-e" else option, []).append(value)
        index += 1
    runtime = found.get("--runtime", [None])[-1]
    return Extras(
        ulimits=tuple(_ulimit(v) for v in found.get("--ulimit", ())),
        devices=tuple(found.get("--device", ())),
        security_opt=tuple(found.get("--security-opt", ())),
        labels=tuple(_pair("--label", v) for v in found.get("--label", ())),
        environment=tuple(_pair("--env", v) for v in found.get("--env", ())),
        tmpfs=tuple((v.partition(":")[0], v.partition(":")[2]) for v in found.get("--tmpfs", ())),
        cap_add=tuple(v.upper().removeprefix("CAP_") for v in found.get("--cap-add", ())),
        sysctls=tuple(_pair("--sysctl", v) for v in found.get("--sysctl", ())),
        runtime=runtime,
    )
