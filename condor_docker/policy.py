"""The agent's policy: what a peer may ask for, decided from what the agent can trust.

The agent runs as root and talks to the Docker engine (itself root on the
machine); every request comes from an untrusted process.  What we trust, and why:

- **Who asks** comes from the kernel (SO_PEERCRED), never from a message.  Job
  requests from uid 0 or gid 0 are refused: a docker job never runs as root, and
  root only manages (signal, cleanup, status).
- **The scratch dir** is named by the peer, so it must be an absolute path whose
  real path is itself (no symlink anywhere in it), strictly under one of the
  admin's execute dirs (CONDOR_DOCKER_EXECUTE_DIRS), a directory owned by the
  peer.  Otherwise a job could have the engine bind-mount any host directory.
  The execute dirs are root-owned, so once checked the path cannot be swapped
  for a link by the peer; the dir itself is opened with O_NOFOLLOW and its
  ownership read from that open descriptor.
- **`.job.ad` and `.machine.ad`** are read only after that check, relative to the
  opened dir, with O_NOFOLLOW and as regular files with one link: a link planted
  there must not make root read (and echo in an error) another file.
- **Resources**: `.machine.ad` is written by the starter into a directory the
  job owns, so the job can rewrite it before its launcher runs.  Its `Cpus` and
  `Memory` are therefore only a request: they are capped by the admin's
  CONDOR_DOCKER_MAX_CPUS / CONDOR_DOCKER_MAX_MEMORY_MB (or by the machine's own
  cores and memory, from psutil, when those are 0), and a job is refused for now
  (REQUEUE: it may pass when other jobs end) when the memory of every container
  the agent runs plus this one would exceed the machine's memory.  The startd's
  slot accounting stays the real limit; this bounds what a lying ad can take.
- **Privileges** come from the admin only: the network `host` only when
  CONDOR_DOCKER_ALLOW_HOST_NETWORK is true, capabilities only those listed in
  the knobs (the spec takes them from Settings, never from the job), never
  privileged mode.  `check_spec` re-checks the final spec, so a future change to
  spec.py cannot widen them silently.

Everything here is pure except `open_scratch`/`read_job_files` (file reads)
and `machine_resources` (psutil).
"""
from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass

from . import ads
from .failures import Code, Failure
from .request import JobRequest, from_ads
from .settings import Settings
from .spec import ContainerSpec, parse_extra_arguments

JOB_AD = ".job.ad"
MACHINE_AD = ".machine.ad"
MAX_AD_BYTES = 4 << 20


@dataclass(frozen=True)
class MachineResources:
    """What this machine has, as the kernel reports it (not as an ad claims)."""
    cpus: int
    memory_mb: int


def machine_resources() -> MachineResources:
    import psutil  # only the agent needs it

    return MachineResources(cpus=psutil.cpu_count() or 1,
                            memory_mb=psutil.virtual_memory().total // (1024 * 1024))


def refuse(reason: str) -> Failure:
    return Failure(Code.POLICY_REFUSED, reason)


def check_job_peer(uid: int, gid: int) -> None:
    """A job's container never runs as root; root may only manage."""
    if uid == 0 or gid == 0:
        raise refuse(f"a docker job cannot run as uid {uid} gid {gid}: root may only manage jobs, "
                     "submit as an ordinary user")


def may_act_on(peer_uid: int, labels: dict) -> bool:
    """Whether the peer may act on a container with these labels (its own, or root)."""
    return peer_uid == 0 or labels.get("org.condor_docker.uid") == str(peer_uid)


def check_container_owner(peer_uid: int, name: str, labels: dict) -> None:
    if labels.get("org.condor_docker.managed") != "true":
        raise refuse(f"container {name} is not managed by condor_docker")
    if not may_act_on(peer_uid, labels):
        raise refuse(f"container {name} does not belong to uid {peer_uid}")


def check_scratch_path(path: str, settings: Settings) -> str:
    """The scratch dir as given, if it is absolute, link-free and strictly under an execute dir."""
    if not isinstance(path, str) or not path or not os.path.isabs(path):
        raise refuse(f"scratch dir {path!r} must be an absolute path")
    normal = os.path.normpath(path)
    real = os.path.realpath(normal)
    if real != normal:
        raise refuse(f"scratch dir {path} is reached through a symbolic link ({real}): refused")
    for execute in settings.execute_dirs:
        base = os.path.realpath(execute)
        if real != base and real.startswith(base.rstrip("/") + "/"):
            return real
    raise refuse(f"scratch dir {path} is not under the execute dirs "
                 f"({', '.join(settings.execute_dirs)}) of this machine")


def open_scratch(path: str, uid: int, settings: Settings) -> tuple[str, int]:
    """Check the scratch dir and open it (O_NOFOLLOW); returns (real path, dir fd owned by caller)."""
    real = check_scratch_path(path, settings)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise refuse(f"scratch dir {real} cannot be opened as a directory: {err.strerror}") from err
    info = os.fstat(fd)
    if info.st_uid != uid:
        os.close(fd)
        raise refuse(f"scratch dir {real} is owned by uid {info.st_uid}, not by the job's uid {uid}")
    return real, fd


def read_ad_text(dir_fd: int, name: str, *, required: bool) -> str | None:
    """A file of the scratch dir: regular, one link, no symlink; None when absent and optional."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        if required:
            raise Failure(Code.BAD_JOB_AD, f"the scratch dir has no {name}") from None
        return None
    except OSError as err:
        raise refuse(f"{name} in the scratch dir cannot be read safely: {err.strerror}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise refuse(f"{name} in the scratch dir must be a plain file (no links)")
        if info.st_size > MAX_AD_BYTES:
            raise refuse(f"{name} in the scratch dir is too large ({info.st_size} bytes)")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read(MAX_AD_BYTES).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def read_job_files(path: str, uid: int, settings: Settings, *, job_ad_required: bool = True
                   ) -> tuple[str, str | None, str | None]:
    """(real scratch dir, .job.ad text, .machine.ad text), read only after the dir passed the checks."""
    real, dir_fd = open_scratch(path, uid, settings)
    try:
        job_text = read_ad_text(dir_fd, JOB_AD, required=job_ad_required)
        machine_text = read_ad_text(dir_fd, MACHINE_AD, required=False)
    finally:
        os.close(dir_fd)
    return real, job_text, machine_text


def cap_resources(request: JobRequest, settings: Settings, machine: MachineResources) -> JobRequest:
    """The request with Cpus/Memory no larger than the admin's caps (else the machine's size)."""
    max_cpus = settings.max_cpus or machine.cpus
    max_memory = settings.max_memory_mb or machine.memory_mb
    return dataclasses.replace(request, cpus=max(1, min(request.cpus, max_cpus)),
                               memory_mb=max(1, min(request.memory_mb, max_memory)))


def check_memory_budget(memory_mb: int, running_mb: int, machine: MachineResources, job_id: str) -> None:
    """REQUEUE when this container plus the running ones would not fit in the machine's memory."""
    if running_mb + memory_mb > machine.memory_mb:
        raise Failure(Code.ENGINE_ERROR,
                      f"job {job_id} asks for {memory_mb} MB but containers already running hold "
                      f"{running_mb} MB of this machine's {machine.memory_mb} MB: try again later")


def admin_capabilities(settings: Settings) -> tuple[str, ...]:
    """The capabilities an admin configured (knob + DOCKER_EXTRA_ARGUMENTS), nothing else."""
    return tuple(dict.fromkeys(settings.add_capabilities + parse_extra_arguments(settings.extra_arguments).cap_add))


def check_spec(spec: ContainerSpec, settings: Settings) -> None:
    """Re-check the final spec against the admin's settings (defence in depth over spec.py)."""
    user = spec.user.split(":")
    if "0" in user or any(g == "0" for g in spec.group_add):
        raise refuse(f"container {spec.name} would run as root ({spec.user}): refused")
    if spec.network_mode == "host" and not settings.allow_host_network:
        raise Failure(Code.NETWORK_NOT_ALLOWED,
                      "docker_network_type = host is not allowed on this machine: use nat or none")
    extra = set(spec.cap_add) - set(admin_capabilities(settings))
    if extra:
        raise refuse(f"capabilities {', '.join(sorted(extra))} were not configured by the admin")
    if settings.drop_all_capabilities and "ALL" not in spec.cap_drop:
        raise refuse("DOCKER_DROP_ALL_CAPABILITIES is true but the container keeps capabilities")
    if "no-new-privileges" not in spec.security_opt:
        raise refuse("the container must run with no-new-privileges")


def request_from_texts(job_text: str, machine_text: str | None, *, uid: int, gid: int, scratch_dir: str,
                       starter_env: dict | None = None, slot: str | None = None) -> JobRequest:
    """Parse the two ads (HOLD on a bad ad) into a JobRequest for this peer."""
    job_ad = ads.parse_ad(job_text, "job ad")
    machine_ad = ads.parse_ad(machine_text or "", "machine ad")
    return from_ads(job_ad, machine_ad, uid=uid, gid=gid, scratch_dir=scratch_dir,
                    starter_env=starter_env, slot=slot)
