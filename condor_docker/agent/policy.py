"""The agent's policy: what a peer may ask for, decided from what the agent can trust.

The agent runs as root and talks to the Docker engine (itself root on the
machine); every request comes from an untrusted process.  docs/TRUST-MODEL.md
has the whole model; in short:

- **Who asks** comes from the kernel (SO_PEERCRED), never from a message.  Job
  requests from uid 0 or gid 0 are refused: a docker job never runs as root, and
  root only manages (signal, cleanup, status).  A peer acts only on its own
  containers (their uid label), root on any.
- **The scratch dir** and the ads in it: agent/scratch.py (opened once, through fds).
- **Resources**: `.machine.ad` sits in a directory the job owns, so its
  Cpus/Memory/Disk/GPUs are only a claim.  `check_resources` holds the job when
  a claim is above the trusted size (agent/slots.py: the startd's slot ad, else
  the admin's caps); a REQUEUE budget check (agent/slots.py) keeps the
  containers the agent runs within the machine's memory.
- **Privileges** come from the admin only: the network `host` only when
  CONDOR_DOCKER_ALLOW_HOST_NETWORK is true, capabilities only those listed in
  the knobs (the spec takes them from Settings, never from the job), never
  privileged mode.  `check_spec` re-checks the final spec, so a future change to
  core/spec.py cannot widen them silently.

Everything here is pure.
"""
from __future__ import annotations

import dataclasses
import os
import pwd
from typing import Any

from ..core import ads
from ..core.failures import Code, Failure
from ..core.labels import MANAGED_LABEL, STARTER_PID_LABEL, UID_LABEL
from ..core.request import JobRequest
from ..core.settings import Settings
from ..core.spec import ContainerSpec, knob_value, parse_extra_arguments
from . import starter_proof
from .slots import SlotResources, check_claim


def refuse(reason: str) -> Failure:
    return Failure(Code.POLICY_REFUSED, reason)


def check_job_peer(uid: int, gid: int) -> None:
    """A job's container never runs as root; root may only manage."""
    if uid == 0 or gid == 0:
        raise refuse(f"a docker job cannot run as uid {uid} gid {gid}: root may only manage jobs, "
                     "submit as an ordinary user")


def may_act_on(peer_uid: int, labels: dict) -> bool:
    """Whether the peer may act on a container with these labels (its own, or root)."""
    return peer_uid == 0 or labels.get(UID_LABEL) == str(peer_uid)


def check_container_owner(peer_uid: int, name: str, labels: dict) -> None:
    if labels.get(MANAGED_LABEL) != "true":
        raise refuse(f"container {name} is not managed by condor_docker")
    if not may_act_on(peer_uid, labels):
        raise refuse(f"container {name} does not belong to uid {peer_uid}")


def check_same_job(peer_pid: int, peer_uid: int, name: str, labels: dict, *, require_starter: bool) -> None:
    """The peer is the container's own job, not just the same uid (trust round 2, item 10).

    Sites map many submitters to one uid (a pool's shared account, `nobody`);
    the uid label alone would let one submitter signal, suspend, clean up or
    enter another's container.  A container whose job was proven to run under
    a condor_starter (label starter_pid) is acted on only from that starter's
    descendants; one without that proof only when the admin does not require it.
    """
    if peer_uid == 0:
        return
    starter = labels.get(STARTER_PID_LABEL)
    if starter is None or not str(starter).isdigit():
        if require_starter:
            raise refuse(f"container {name} has no proven condor_starter (CONDOR_DOCKER_REQUIRE_STARTER = true)")
        return
    if not starter_proof.descends_from(peer_pid, int(starter), trusted_owners()):
        raise refuse(f"process {peer_pid} is not a job of condor_starter {starter}, which runs container {name}")


def check_peer_still_there(ctx) -> None:
    """Refuse when the peer exited after what /proc said about it was read (its pid may be reused)."""
    if not ctx.peer_still_there():
        raise refuse(f"process {ctx.pid} exited while its request was checked")


def trusted_owners() -> set[int]:
    """Who may own an execute dir: root, this agent's own user, and the condor user."""
    owners = {0, os.geteuid()}
    try:
        owners.add(pwd.getpwnam("condor").pw_uid)
    except KeyError:
        pass
    return owners


def check_resources(request: JobRequest, machine_ad_text: str | None, trusted: SlotResources) -> JobRequest:
    """HOLD when the job's ads claim more than the trusted slot size; else the request, trusted parts swapped in.

    Cpus/Memory are what the container gets (from .machine.ad, or the job's
    Request* when there is none), checked against the trusted size; Disk/GPUs of
    .machine.ad are checked too, so a rewritten ad is refused as a whole rather
    than partly believed.  What the job could forge by deleting a line is taken
    from the trusted source alone: the GPUs (the startd's AssignedGPUs; none when
    it says none or does not say) and the disk limit (the startd's Disk).
    """
    check_claim("Cpus", request.cpus, trusted.cpus, "", trusted)
    check_claim("Memory", request.memory_mb, trusted.memory_mb, " MB", trusted)
    if machine_ad_text and (trusted.disk_kb is not None or trusted.gpus is not None):
        machine_ad = ads.parse_ad(machine_ad_text, "machine ad")
        check_claim("Disk", ads.get_int(machine_ad, "Disk"), trusted.disk_kb, " KB", trusted)
        check_claim("GPUs", ads.get_int(machine_ad, "GPUs"), trusted.gpus, "", trusted)
    return dataclasses.replace(request, gpus=trusted_gpus(request, trusted),
                               disk_kb=_disk_limit_kb(request.disk_kb, trusted.disk_kb),
                               vouched=vouched_attributes(request.uid, trusted))


def vouched_attributes(uid: int, trusted: SlotResources) -> tuple[tuple[str, Any], ...]:
    """What the admin's expressions (MOUNT_IF, expression knobs) may read: Owner from the caller's
    uid (the kernel's word), Cpus and Memory from the trusted slot size, the rest from the startd."""
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = str(uid)
    sizes = (("Cpus", trusted.cpus), ("Memory", trusted.memory_mb))
    return (("Owner", owner),) + sizes + tuple((name, value) for name, value in trusted.vouched
                                               if name not in ("Owner", "Cpus", "Memory"))


def check_slot_user(uid: int, trusted: SlotResources) -> None:
    """Without a starter proof the slot name is the job's word: refuse a slot the startd says another
    user claimed, or its GPUs (AssignedGPUs) and RemoteOwner (MOUNT_IF) would be the job's."""
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    for name, value in trusted.vouched:
        if name in ("RemoteOwner", "RemoteUser") and value.split("@")[0] != user:
            raise refuse(f"{trusted.source} is claimed by {value[:80]}, not by {user}: "
                         "the job's _CONDOR_SLOT or .machine.ad names another job's slot")


def _disk_limit_kb(claimed: int | None, trusted: int | None) -> int | None:
    """The lower of the job's claim and the trusted size: a job can only lower its own limit.

    Deleting `Disk` from .machine.ad leaves the trusted size (the startd's Disk, or
    the admin's cap / the execute filesystem's size), never no limit at all.
    """
    known = [value for value in (claimed, trusted) if value is not None]
    return min(known) if known else None


def trusted_gpus(request: JobRequest, trusted: SlotResources) -> tuple[str, ...]:
    """The GPUs the container gets: the startd's assignment for this slot, never the job's word.

    The job writes .machine.ad and its own environment (_CONDOR_AssignedGPUs), so
    neither may add a device; a slot without a startd answer (the admin's caps)
    gets no GPUs.
    """
    if not trusted.gpus or trusted.assigned_gpus is None:
        return ()
    return trusted.assigned_gpus[:trusted.gpus]


def admin_capabilities(settings: Settings) -> tuple[str, ...]:
    """The capabilities an admin configured (knob + DOCKER_EXTRA_ARGUMENTS), nothing else."""
    return tuple(dict.fromkeys(settings.add_capabilities + parse_extra_arguments(settings.extra_arguments).cap_add))


def check_spec(spec: ContainerSpec, settings: Settings, vouched: tuple[tuple[str, Any], ...] = ()) -> None:
    """Re-check the final spec against the admin's settings (defence in depth over core/spec.py);
    `vouched`: what the job's per-job knob expressions were evaluated over."""
    user = spec.user.split(":")
    if "0" in user or any(g == "0" for g in spec.group_add):
        raise refuse(f"container {spec.name} would run as root ({spec.user}): refused")
    if spec.network_mode == "host" and not settings.allow_host_network:
        raise Failure(Code.NETWORK_NOT_ALLOWED,
                      "docker_network_type = host is not allowed on this machine: use nat or none")
    extra = set(spec.cap_add) - set(admin_capabilities(settings))
    if extra:
        raise refuse(f"capabilities {', '.join(sorted(extra))} were not configured by the admin")
    if knob_value(settings.drop_all_capabilities, vouched) and "ALL" not in spec.cap_drop:
        raise refuse("DOCKER_DROP_ALL_CAPABILITIES is true but the container keeps capabilities")
    if "no-new-privileges" not in spec.security_opt:
        raise refuse("the container must run with no-new-privileges")
