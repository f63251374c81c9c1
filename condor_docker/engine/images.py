"""Making a job's image present on the engine, per the job's pull policy.

The agent wraps `ensure_image` in a single-flight coordinator and a cache with
garbage collection (see engine/image_cache.py); the local runner calls it directly.
"""
from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from typing import Callable

from ..core.failures import Code, Failure
from ..core.imageref import (
    canonical,
    canonical_registry,
    check_registry,
    registry_host,
    repository_and_tag,
)
from ..core.settings import Settings
from .client import Engine

log = logging.getLogger("condor_docker.images")


@dataclass(frozen=True)
class ImageRules:
    """The admin's rules for a job's image (the job names the image; root pulls it).

    allowed_registries: CONDOR_DOCKER_ALLOWED_REGISTRIES (empty: any registry).
    max_image_mb: CONDOR_DOCKER_MAX_IMAGE_SIZE_MB, the per-pull size cap (0: none).
    credential_registries: CONDOR_DOCKER_CREDENTIAL_REGISTRIES, the registries that get
      root's docker credentials; every other pull is anonymous (a job names the registry).
    """
    allowed_registries: tuple[str, ...] = ()
    max_image_mb: int = 0
    credential_registries: tuple[str, ...] = ()
    check_architecture: bool = True     # not DOCKER_SKIP_IMAGE_ARCH_CHECK

    @classmethod
    def of(cls, settings: Settings) -> "ImageRules":
        return cls(allowed_registries=settings.allowed_registries, max_image_mb=settings.max_image_size_mb,
                   credential_registries=settings.credential_registries,
                   check_architecture=not settings.skip_image_arch_check)

    def sends_credentials(self, reference: str) -> bool:
        return registry_host(reference) in {canonical_registry(name) for name in self.credential_registries}


MB = 1024 * 1024

# platform.machine() -> the engine's name for it (an image's Architecture)
ENGINE_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x"}


def check_architecture(reference: str, inspected: dict, machine: str | None = None) -> None:
    """HOLD (WRONG_ARCHITECTURE) when the image is built for another CPU than this machine's.

    As HTCondor's docker universe: an image that does not say is given the benefit of
    the doubt, and so is a machine whose architecture we cannot name.  Without this the
    job would fail at exec with the engine's "exec format error" and be mistaken for a
    broken job.
    """
    here = ENGINE_ARCHITECTURES.get(machine or platform.machine())
    image = str(inspected.get("Architecture") or "")
    if here and image and image != here:
        raise Failure(Code.WRONG_ARCHITECTURE,
                      f"Image {reference} is built for {image}, not for this machine's {here}: use an image "
                      f"(or a multi-arch tag) for {here}, or ask the admin for DOCKER_SKIP_IMAGE_ARCH_CHECK")
_SIZE_KNOB = "CONDOR_DOCKER_MAX_IMAGE_SIZE_MB"


def _too_large(reference: str, size: str, cap_mb: int, what: str) -> Failure:
    return Failure(Code.IMAGE_TOO_LARGE,
                   f"Image {reference} {size}, over this execute point's per-pull cap of {cap_mb} MB "
                   f"({_SIZE_KNOB} = {cap_mb}); {what}: use a smaller image, or ask the admin to raise the cap")


class _SizeCap:
    """A pull's progress listener that stops the pull once its layers add up to more than the cap.

    The engine says each layer's size (compressed, as the registry serves it)
    in its `Downloading` items; layers already on this machine are not counted
    here, and the pulled image's own size is checked when the pull is done.
    """

    def __init__(self, reference: str, cap_mb: int, then: Callable[[dict], None] | None) -> None:
        self.reference, self.cap_mb, self.then = reference, cap_mb, then
        self.layers: dict[str, int] = {}

    def __call__(self, item: dict) -> None:
        detail = item.get("progressDetail") or {}
        if item.get("status") == "Downloading" and item.get("id") and detail.get("total"):
            self.layers[str(item["id"])] = int(detail["total"])
            total = sum(self.layers.values())
            if total > self.cap_mb * MB:
                raise _too_large(self.reference, f"has at least {total / MB:.1f} MB of layers to download",
                                 self.cap_mb, "the pull was stopped")
        if self.then is not None:
            self.then(item)


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
        if rules.check_architecture:
            check_architecture(reference, present)
        return present
    log.info("pulling %s (policy %s)", reference, policy)
    cap = rules.max_image_mb
    credentials = rules.sends_credentials(reference)
    try:
        pulled = engine.pull(reference, timeout=pull_timeout, stall_timeout=stall_timeout,
                             on_progress=_SizeCap(reference, cap, on_progress) if cap else on_progress,
                             credentials=credentials)
        size = int(pulled.get("Size") or 0)
        if cap and size > cap * MB:
            raise _too_large(reference, f"is {size / MB:.1f} MB", cap,
                             "it was pulled and is removed again" if present is None else "it is refused")
    except Failure as failure:
        if failure.code is Code.IMAGE_TOO_LARGE and present is None:
            _remove_quietly(engine, reference)
        if failure.code is Code.IMAGE_ACCESS_DENIED and not credentials:
            raise Failure(failure.code, f"{failure.reason} (pulled anonymously: registry {registry_host(reference)} "
                                        "is not in CONDOR_DOCKER_CREDENTIAL_REGISTRIES)") from None
        raise
    if rules.check_architecture:
        check_architecture(reference, pulled)
    return pulled


def _remove_quietly(engine: Engine, reference: str) -> None:
    """Remove what an over-cap pull left (a stopped pull may still have tagged it); never raise."""
    try:
        engine.remove_image(reference)
    except Failure as failure:
        log.warning("cannot remove the over-cap image %s: %s", reference, failure.reason)
