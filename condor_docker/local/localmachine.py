"""This machine as the local runner's one slot, and what a negotiator would decide about a job on it.

`condor_docker run` has no negotiator: a job whose `requirements`, `request_disk`
`request_cpus`, `request_memory` or `request_gpus` this machine can never satisfy would stay idle for ever in a
pool; here it is refused with one line saying why, before anything runs.
"""
from __future__ import annotations

import os
import tempfile

from ..core import ads
from .submitfile import MAX_REQUEST, Proc, SubmitError


def local_machine_ad(gpu_ids: tuple[str, ...], scratch_parent: str | None = None):
    """This machine as one partitionable slot would advertise it: what `requirements` sees."""
    import platform
    stats = os.statvfs(scratch_parent or tempfile.gettempdir())
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    return ads.parse_ad("\n".join([
        'Name = "slot1@localhost"', 'Machine = "localhost"', 'OpSys = "LINUX"',
        f'Arch = "{"X86_64" if platform.machine() == "x86_64" else platform.machine().upper()}"',
        f"Cpus = {os.cpu_count() or 1}", f"Memory = {memory_mb}",
        f"Disk = {stats.f_bavail * stats.f_frsize // 1024}", f"GPUs = {len(gpu_ids)}",
        "HasDocker = true", "HasFileTransfer = true"]) + "\n", "machine ad")


MIN_CONTAINER_MEMORY_MB = 6   # Docker's own floor ("Minimum memory limit allowed is 6MB")


def _amount(wanted: int, unit: str = "") -> str:
    """A request as a refusal shows it: one cut to MAX_REQUEST (more than an ad holds) says so."""
    return f"{wanted}{unit}" + (" or more" if wanted >= MAX_REQUEST else "")


def check_fits(proc: Proc, machine_ad) -> None:
    """What a negotiator would decide: a job this machine can never match is refused, not left idle."""
    name = f"job {proc.ad['ClusterId']}.{proc.ad['ProcId']}"
    wanted_gpus = ads.get_int(proc.ad, "RequestGPUs", 0) or 0
    if wanted_gpus > (ads.get_int(machine_ad, "GPUs", 0) or 0):
        raise SubmitError(f"request_gpus = {_amount(wanted_gpus)}: this machine has {machine_ad['GPUs']} GPU(s) "
                          f"(found under /dev/nvidia*); lower request_gpus or run it in a pool with GPUs")
    wanted_cpus = ads.get_int(proc.ad, "RequestCpus", 0) or 0
    if wanted_cpus < 1:   # the local slot is the request: a 0-CPU container would be held after a start
        raise SubmitError(f"request_cpus = {wanted_cpus}: a job needs at least 1 CPU; raise request_cpus")
    if wanted_cpus > (ads.get_int(machine_ad, "Cpus", 0) or 0):
        raise SubmitError(f"request_cpus = {_amount(wanted_cpus)}: this machine has {machine_ad['Cpus']} CPUs; "
                          "lower request_cpus or run it in a pool with bigger machines")
    wanted_memory = ads.get_int(proc.ad, "RequestMemory", 0) or 0
    if wanted_memory < MIN_CONTAINER_MEMORY_MB:   # the local slot is the request: the engine would refuse it
        raise SubmitError(f"request_memory = {wanted_memory} MB: a container needs at least "
                          f"{MIN_CONTAINER_MEMORY_MB} MB (the engine's minimum); raise request_memory "
                          "(a fraction is rounded up to whole MB, as condor_submit does)")
    if wanted_memory > (ads.get_int(machine_ad, "Memory", 0) or 0):
        raise SubmitError(f"request_memory = {_amount(wanted_memory, ' MB')}: this machine has "
                          f"{machine_ad['Memory']} MB; lower request_memory or run it in a pool with bigger machines")
    wanted_disk = ads.get_int(proc.ad, "RequestDisk", 0) or 0
    if wanted_disk > (ads.get_int(machine_ad, "Disk", 0) or 0):
        raise SubmitError(f"request_disk = {_amount(wanted_disk, ' KB')}: only {machine_ad['Disk']} KB free for "
                          "scratch dirs here; lower request_disk or free space")
    if "Requirements" in proc.ad:
        expr = proc.ad.lookup("Requirements")
        try:
            value = expr.eval(scope=proc.ad, target=machine_ad)
        except Exception as err:
            value = f"an error ({err})"
        if value is not True:
            raise SubmitError(f"requirements = {expr}: {name} does not match this machine (evaluates to {value} "
                              "against its machine ad: OpSys, Arch, Cpus, Memory, Disk, GPUs, HasDocker); "
                              "a pool would leave it idle")
