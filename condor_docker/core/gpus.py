"""GPUs: the starter's assignment -> the container's device request and environment.

On an execute point the startd assigns GPUs to the slot and the starter tells
the job which ones: `_CONDOR_AssignedGPUs` in the job's environment (and
`AssignedGPUs` in the slot ad), plus `CUDA_VISIBLE_DEVICES` and friends.  The
container must get exactly those devices (a Docker device request, served by
the NVIDIA container runtime, or CDI names when the ids are CDI names), and
the variables inside must still be right: an index such as `1` on the host is
device `0` inside a container that sees one GPU, while a UUID (`GPU-…`) means
the same device everywhere.  Pure functions: tested without a GPU.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

# What the starter sets for GPUs; all of them are rewritten for the container.
VISIBLE_DEVICE_VARS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL")
_CDI_NAME = re.compile(r"^[a-z0-9.-]+/[a-z0-9._-]+=\S+$")


@dataclass(frozen=True)
class DeviceRequest:
    """One Docker device request: driver `nvidia` (NVIDIA runtime) or `cdi`, with device ids."""
    driver: str
    device_ids: tuple[str, ...]
    capabilities: tuple[str, ...] = ("gpu",)


def assigned_gpus(starter_env: Mapping[str, str], machine_assigned: str | None = None,
                  slot_gpus: int | None = None) -> tuple[str, ...]:
    """The GPUs the starter gave this job: the slot's `AssignedGPUs`, else `_CONDOR_AssignedGPUs`.

    A slot without GPUs gets none, whatever the environment says: a real starter
    sets `_CONDOR_AssignedGPUs=10000` (and CUDA_VISIBLE_DEVICES=10000, a device
    that does not exist) for a job with no GPUs, to hide every GPU [seen on a real
    pool]; that must not become a device request.  `slot_gpus` is the slot ad's
    `GPUs` (None when there is no slot ad, e.g. local runs).
    """
    if slot_gpus is not None and slot_gpus <= 0:
        return ()
    text = machine_assigned or starter_env.get("_CONDOR_AssignedGPUs") or ""
    return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)


def device_requests(ids: tuple[str, ...]) -> tuple[DeviceRequest, ...]:
    """The device request for exactly these GPUs (none for none)."""
    if not ids:
        return ()
    cdi = tuple(i for i in ids if _CDI_NAME.match(i))
    plain = tuple(i for i in ids if not _CDI_NAME.match(i))
    requests = []
    if plain:
        requests.append(DeviceRequest("nvidia", plain))
    if cdi:
        requests.append(DeviceRequest("cdi", cdi, ()))
    return tuple(requests)


NO_GPUS = "void"   # NVIDIA_VISIBLE_DEVICES for "none": the NVIDIA runtime then injects no device


def container_environment(ids: tuple[str, ...]) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES etc. as seen from inside the container; NVIDIA_VISIBLE_DEVICES always.

    UUIDs name the same device inside, so they are kept; host indices are
    renumbered 0..n-1, the order the container runtime exposes them in.
    NVIDIA_VISIBLE_DEVICES is what the NVIDIA runtime reads (host ids): it is
    set even for no GPUs (`void`), overriding the job's environment and the
    image's ENV, so that a host whose default runtime is nvidia gives a 0-GPU
    job no device.
    """
    if not ids:
        return {"NVIDIA_VISIBLE_DEVICES": NO_GPUS}
    inside = ids if all(i.startswith(("GPU-", "MIG-")) for i in ids) else tuple(str(n) for n in range(len(ids)))
    value = ",".join(inside)
    return {"CUDA_VISIBLE_DEVICES": value, "GPU_DEVICE_ORDINAL": value, "_CONDOR_AssignedGPUs": ",".join(ids),
            "NVIDIA_VISIBLE_DEVICES": ",".join(ids)}


def starter_environment(ids: tuple[str, ...]) -> dict[str, str]:
    """What a starter would set for these GPUs (the local runner plays the starter)."""
    if not ids:
        return {}
    value = ",".join(ids)
    return {"_CONDOR_AssignedGPUs": value, "CUDA_VISIBLE_DEVICES": value, "GPU_DEVICE_ORDINAL": value}


def machine_gpus(dev: str = "/dev") -> tuple[str, ...]:
    """This machine's NVIDIA GPUs by index (`/dev/nvidia0` …), for local runs."""
    try:
        names = os.listdir(dev)
    except OSError:
        return ()
    indices = sorted(int(m.group(1)) for m in (re.fullmatch(r"nvidia([0-9]+)", n) for n in names) if m)
    return tuple(str(i) for i in indices)
