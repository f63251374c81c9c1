"""Making a job's image present on the engine, per the job's pull policy.

The agent wraps `ensure_image` in a single-flight coordinator and a cache with
garbage collection (see `image_cache.py`); the local runner calls it directly.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ..core.failures import Code, Failure
from ..core.imageref import canonical, check_registry, repository_and_tag
from ..core.settings import Settings
from .client import Engine

log = logging.getLogger("condor_docker.images")


@dataclass(frozen=True)
class ImageRules:
    """The admin's rules for a job's image (the job names the image; root pulls it).

    allowed_registries: CONDOR_DOCKER_ALLOWED_REGISTRIES (empty: any registry).
    """
    allowed_registries: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> "ImageRules":
        return cls(allowed_registries=settings.allowed_registries)


def is_local_only(inspected: dict, reference: str) -> bool:
    """True when the engine never pulled `reference`'s repository from a registry.

    The same image id may have been pushed or pulled under another name; what
    counts is a registry digest for this reference's own repository.
    """
    repository = repository_and_tag(canonical(reference))[0]  # RepoDigests use the engine's (familiar) names
    return not any(digest.split("@", 1)[0] == repository for digest in inspected.get("RepoDigests") or ())


def ensure_image(engine: Engine, reference: str, *, policy: str, trust_local_images: bool,
                 pull_timeout: float, stall_timeout: float,
                 on_progress: Callable[[dict], None] | None = None, rules: ImageRules = ImageRules()) -> dict:
    """Return the image's inspect data, pulling when absent or when the policy is `always`.

    An image from a registry the admin does not allow is a HOLD before anything
    else, even when it is present (it got here some other way).

    A present image that exists only on this machine is used only when
    DOCKER_TRUST_LOCAL_IMAGES is true: otherwise a job could succeed here and
    fail on every other machine of the pool, and anyone who can load an image
    on this engine could substitute what a job runs.
    """
    check_registry(reference, rules.allowed_registries)
    present = engine.image_inspect(reference)
    if present is not None and policy != "always":
        if is_local_only(present, reference) and not trust_local_images:
            raise Failure(Code.IMAGE_NOT_TRUSTED,
                          f"Image {reference} exists only on this machine and DOCKER_TRUST_LOCAL_IMAGES is false: "
                          "push it to a registry, or ask the admin to trust local images")
        return present
    log.info("pulling %s (policy %s)", reference, policy)
    return engine.pull(reference, timeout=pull_timeout, stall_timeout=stall_timeout, on_progress=on_progress)
