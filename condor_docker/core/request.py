"""The job model: a job ad + a machine ad, read into a typed `JobRequest`.

This is the only place that knows which job-ad attributes matter to a docker job
and how HTCondor spells them.  Everything after it (the container spec, the
agent's policy, the lifecycle) works on the typed request.
"""
from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any, Mapping

import classad2

from . import ads, gpus, imageref
from .arguments import (
    ArgumentSyntaxError,
    parse_args_v1,
    parse_args_v2,
    parse_env_v1,
    parse_env_v2,
)
from .chirpnames import SERVICE_NAME
from .failures import Code, Failure
from .jobkind import is_container_job, is_docker_container_job, is_docker_job  # noqa: F401 (their home was here)

PULL_POLICIES = ("always", "missing")


@dataclass(frozen=True)
class JobRequest:
    """What a docker job asks for, in the terms the mapping needs."""

    cluster: int
    proc: int
    slot: str
    machine: str
    owner: str
    uid: int
    gid: int
    scratch_dir: str
    image: str                      # normalised: has a tag or digest
    cmd: str | None                 # None: the image's own default command runs
    args: tuple[str, ...]
    transfer_executable: bool
    override_entrypoint: bool
    environment: tuple[tuple[str, str], ...]   # the job's Environment, in order
    starter_env: tuple[tuple[str, str], ...]   # what the starter gave the job process
    cpus: int
    memory_mb: int
    network_type: str | None
    pull_policy: str                # "always" or "missing"
    has_input: bool
    kill_grace: float | None        # JobMaxVacateTime, when the job says
    num_job_starts: int
    job_ad: classad2.ClassAd = field(compare=False, repr=False)
    gpus: tuple[str, ...] = ()      # the starter's assignment (_CONDOR_AssignedGPUs / AssignedGPUs)
    disk_kb: int | None = None      # the slot's Disk (else RequestDisk), KB: the running job's disk limit
    vouched: tuple[tuple[str, Any], ...] = ()   # what the agent vouches for (admin expressions read only these)
    services: tuple[tuple[str, int], ...] = ()  # container_service_names: (name, container port)

    @property
    def job_id(self) -> str:
        return f"{self.cluster}.{self.proc}"


def job_image(job_ad: classad2.ClassAd) -> str:
    """The engine reference to run: DockerImage (docker universe) or ContainerImage's docker:// ref."""
    docker_image = ads.get_str(job_ad, "DockerImage")
    if docker_image is None and is_container_job(job_ad):
        return imageref.container_image_ref(ads.get_str(job_ad, "ContainerImage"),
                                            ads.get_str(job_ad, "ContainerImageSource"))
    return imageref.normalize(docker_image or "")


def slot_name(machine_ad: classad2.ClassAd, fallback: str | None = None) -> str:
    """`slot1_1` from the slot's Name `slot1_1@host` (or the starter's _CONDOR_SLOT)."""
    if fallback:
        return fallback
    name = ads.get_str(machine_ad, "Name") or "slot1"
    return name.split("@", 1)[0]


def _arguments(job_ad: classad2.ClassAd) -> tuple[str, ...]:
    try:
        raw_v2 = ads.get_str(job_ad, "Arguments")
        if raw_v2 is not None:
            return tuple(parse_args_v2(raw_v2))
        raw_v1 = ads.get_str(job_ad, "Args")
        return tuple(parse_args_v1(raw_v1)) if raw_v1 else ()
    except ArgumentSyntaxError as err:
        raise Failure(Code.BAD_JOB_AD, f"invalid arguments: {err}") from err


def _environment(job_ad: classad2.ClassAd) -> tuple[tuple[str, str], ...]:
    try:
        raw_v2 = ads.get_str(job_ad, "Environment")
        if raw_v2 is not None:
            return tuple(parse_env_v2(raw_v2).items())
        raw_v1 = ads.get_str(job_ad, "Env")
        return tuple(parse_env_v1(raw_v1).items()) if raw_v1 else ()
    except ArgumentSyntaxError as err:
        raise Failure(Code.BAD_JOB_AD, f"invalid environment: {err}") from err


def _resource(machine_ad: classad2.ClassAd, job_ad: classad2.ClassAd, slot_attr: str, job_attr: str) -> int:
    """The slot's size; the job's request only when there is no slot ad (local runs)."""
    value = ads.get_int(machine_ad, slot_attr)
    if value is None:
        value = ads.get_int(job_ad, job_attr)
    if value is None or value <= 0:
        raise Failure(Code.BAD_JOB_AD,
                      f"neither the slot's {slot_attr} nor the job's {job_attr} is a positive number: "
                      f"set request_{slot_attr.lower()} in the submit file")
    return value


def _pull_policy(job_ad: classad2.ClassAd) -> str:
    policy = (ads.get_str(job_ad, "DockerPullPolicy") or "missing").strip().lower()
    if policy not in PULL_POLICIES:
        raise Failure(Code.BAD_JOB_AD,
                      f"docker_pull_policy = {policy!r} is not known: use always, or leave it out")
    return policy


def _has_input(job_ad: classad2.ClassAd) -> bool:
    stdin = ads.get_str(job_ad, "In")
    return bool(stdin) and stdin != "/dev/null"


def from_ads(job_ad: classad2.ClassAd, machine_ad: classad2.ClassAd, *, uid: int, gid: int,
             scratch_dir: str, starter_env: Mapping[str, str] | None = None,
             slot: str | None = None) -> JobRequest:
    """Read the request; any attribute that cannot be used is a HOLD naming it."""
    cmd = ads.get_str(job_ad, "Cmd") or None
    vacate = ads.get_int(job_ad, "JobMaxVacateTime")
    if ads.get_bool(job_ad, "DockerSendCredentials", False):
        raise Failure(Code.BAD_JOB_AD, SEND_CREDENTIALS_REFUSED)
    return JobRequest(
        cluster=ads.get_int(job_ad, "ClusterId", 0) or 0,
        proc=ads.get_int(job_ad, "ProcId", 0) or 0,
        slot=slot_name(machine_ad, slot),
        machine=ads.get_str(machine_ad, "Machine") or socket.gethostname(),
        owner=ads.get_str(job_ad, "Owner") or str(uid),
        uid=uid,
        gid=gid,
        scratch_dir=scratch_dir,
        image=job_image(job_ad),
        cmd=cmd,
        args=_arguments(job_ad),
        transfer_executable=ads.get_bool(job_ad, "TransferExecutable", True),
        override_entrypoint=ads.get_bool(job_ad, "DockerOverrideEntrypoint", False),
        environment=_environment(job_ad),
        starter_env=tuple((starter_env or {}).items()),
        cpus=_resource(machine_ad, job_ad, "Cpus", "RequestCpus"),
        memory_mb=_resource(machine_ad, job_ad, "Memory", "RequestMemory"),
        network_type=(ads.get_str(job_ad, "DockerNetworkType") or None),
        pull_policy=_pull_policy(job_ad),
        has_input=_has_input(job_ad),
        kill_grace=float(vacate) if vacate is not None else None,
        num_job_starts=max(ads.get_int(job_ad, "NumJobStarts", 0) or 0,
                           ads.get_int(job_ad, "NumShadowStarts", 0) or 0),
        job_ad=job_ad,
        gpus=gpus.assigned_gpus(starter_env or {}, ads.get_str(machine_ad, "AssignedGPUs"),
                                ads.get_int(machine_ad, "GPUs")),
        disk_kb=_optional_resource(machine_ad, job_ad, "Disk", "RequestDisk"),
        services=container_services(job_ad),
    )


MAX_SERVICES = 32

# HTCondor's starter fetches the owner's registry credentials from the shadow (a syscall only
# its own docker universe makes; the access point runs DOCKER_PAT_PRODUCER).  No hook can ask
# for them, and pulling a private image with root's credentials for a job that expected its
# owner's would hand one user's access to another: refused, never silently ignored.
SEND_CREDENTIALS_REFUSED = (
    "docker_send_credentials: condor_docker cannot fetch the job owner's registry credentials "
    "(only HTCondor's own docker universe can ask the shadow for them): remove it and use a public "
    "image, or an image from a registry the admin lists in CONDOR_DOCKER_CREDENTIAL_REGISTRIES")


def container_services(job_ad: classad2.ClassAd) -> tuple[tuple[str, int], ...]:
    """container_service_names and each <name>_container_port: (service, container port) pairs.

    A service's host port lands in the job ad as <name>_HostPort, so a name must be an
    attribute name; each must have a port (condor_submit checks that too).  Else a hold
    naming the service and the fix.
    """
    names = ads.get_str(job_ad, "ContainerServiceNames")
    if not names:
        return ()
    services = []
    unique: dict[str, str] = {}   # ClassAd names ignore case: Web and web are one <name>_HostPort
    for name in (n for n in re.split(r"[\s,]+", names) if n):
        unique.setdefault(name.lower(), name)
    for name in unique.values():
        if not SERVICE_NAME.match(name):
            raise Failure(Code.BAD_JOB_AD, f"container_service_names: {name[:80]!r} is not a service name: "
                                           "use letters, digits and _, starting with a letter")
        try:
            port = ads.get_int(job_ad, f"{name}_ContainerPort")
        except Failure:
            port = None
        if port is None or not 1 <= port <= 65535:
            raise Failure(Code.BAD_JOB_AD, f"container_service_names: service {name} has no usable port: "
                                           f"set {name}_container_port = 1..65535 in the submit file")
        services.append((name, port))
    if len(services) > MAX_SERVICES:
        raise Failure(Code.BAD_JOB_AD, f"container_service_names: {len(services)} services, at most {MAX_SERVICES}")
    return tuple(services)


def _optional_resource(machine_ad: classad2.ClassAd, job_ad: classad2.ClassAd, slot_attr: str,
                       job_attr: str) -> int | None:
    """The slot's value, else the job's request; None when neither is a positive integer."""
    for ad, attr in ((machine_ad, slot_attr), (job_ad, job_attr)):
        try:
            value = ads.get_int(ad, attr)
        except Failure:
            value = None
        if value is not None and value > 0:
            return value
    return None
