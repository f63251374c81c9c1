"""What `condor_docker status` shows, gathered by the agent (op `admin_status`).

Root sees every job and container; any other user their own (by the caller's
uid from the kernel).  Each part fails on its own, so one broken engine call
still leaves the rest on screen; admin/status.py renders it.
"""
from __future__ import annotations

from typing import Any

from ..core.labels import CLUSTER_LABEL, PROC_LABEL, UID_LABEL


def gather(*, health: Any, jobs: list[dict], engine: Any, cache: Any, uid: int) -> dict:
    """The agent's view, as JSON-ready data; each part fails on its own (an error names it)."""
    state = health.current()
    report: dict[str, Any] = {"ok": True, "health": {"healthy": state.healthy, "version": state.version,
                                                      "reason": state.reason}, "jobs": jobs}
    try:
        containers = engine.managed_containers()
        report["containers"] = [_container(c) for c in containers
                                if uid == 0 or (c.get("Labels") or {}).get(UID_LABEL) == str(uid)]
    except Exception as err:  # a Failure from the engine, or a bug: the rest still shows
        report["containers_error"] = getattr(err, "reason", str(err))
    report["pulls"] = cache.pulls()
    try:
        advertised = cache.advertised()
        in_use = cache.in_use()
        report["cache"] = [{"reference": ref, "size_mb": size, "in_use": ref in in_use,
                            "last_use": cache.last_use(ref)}
                           for ref, size in zip(advertised["DockerImageCacheList"],
                                                advertised["DockerImageCacheSizesMb"])]
        report["cache_total_mb"] = advertised["DockerCachedImageSizeMb"]
    except Exception as err:
        report["cache_error"] = getattr(err, "reason", str(err))
    return report


def _container(listed: dict) -> dict:
    labels = listed.get("Labels") or {}
    return {"name": str((listed.get("Names") or ["?"])[0]).lstrip("/"),
            "job": f"{labels.get(CLUSTER_LABEL, '?')}.{labels.get(PROC_LABEL, '?')}",
            "uid": labels.get(UID_LABEL, "?"), "image": listed.get("Image", "?"),
            "state": listed.get("State", "?"), "status": listed.get("Status", "")}
