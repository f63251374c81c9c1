"""Docker image references: validate and normalise `DockerImage` as the engine would.

`:latest` is added only when the reference has neither a tag nor a digest; the
`host:port/` prefix of a registry is not a tag (`127.0.0.1:5000/img` -> `127.0.0.1:5000/img:latest`).
An invalid reference is a HOLD: no registry could ever serve it.

`canonical` is the one name of an image: what the engine lists in `RepoTags`
(`docker images`), so the cache's records, reference counts, pins and eviction
all agree with the engine.  Docker Hub spellings are made familiar as the engine
does (`docker.io/library/x:1`, `index.docker.io/library/x:1` -> `x:1`;
`docker.io/u/x` -> `u/x:latest`); every other registry is kept as written,
port included (the engine lists `host:443/x:1` and `host/x:1` as two names).
`registry_host` is the registry a pull goes to, for the admin's registry lists
(`docker.io` == `index.docker.io`; host compared without case, port exactly).

`universe = container` jobs name their image in `ContainerImage`: condor_submit
keeps `docker://<ref>` for registry images (ContainerImageSource = "docker") and a
file or directory name for Singularity/Apptainer images (`x.sif`, an unpacked
sandbox dir).  Only the first kind is an engine image; `container_image_ref` maps
it, and says clearly why the others cannot run here.
"""
from __future__ import annotations

import re

from .failures import Code, Failure

MAX_NAME = 255   # the engine's limit on [registry/]repository (distribution/reference NameTotalLengthMax)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"^(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$")


def _split_domain(reference: str) -> tuple[str | None, str]:
    """Docker's rule: the first component is a registry if it has '.', ':' or is localhost."""
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, reference


def normalize(reference: str) -> str:
    """The reference the engine will pull and run, or a HOLD saying what is wrong with it."""
    text = (reference or "").strip()
    if not text:
        raise Failure(Code.INVALID_IMAGE, "the job has no docker_image: add docker_image = <registry>/<image>:<tag> to the submit file")
    if text.startswith(DOCKER_URL):
        raise Failure(Code.INVALID_IMAGE,
                      f"Invalid docker_image {text!r}: docker:// is container_image syntax; write "
                      f"docker_image = {text[len(DOCKER_URL):]} (or container_image = {text})")
    domain, remainder = _split_domain(text)
    match = _REFERENCE.match(remainder)
    if match is None or (domain is not None and not re.fullmatch(_DOMAIN, domain)):
        hint = " (repository names must be lower case)" if remainder != remainder.lower() else ""
        raise Failure(Code.INVALID_IMAGE,
                      f"Invalid docker_image {text!r}{hint}: write [registry[:port]/]name[:tag][@digest]")
    port = domain.rpartition(":")[2] if domain and ":" in domain else None
    if port is not None and not 0 < int(port) <= 65535:   # the engine would only fail to connect (transient)
        raise Failure(Code.INVALID_IMAGE, f"Invalid docker_image {text!r}: the registry port {port} is not "
                                          "a TCP port (1 to 65535); write [registry[:port]/]name[:tag][@digest]")
    if (len(domain) + 1 if domain else 0) + len(match.group("path")) > MAX_NAME:
        raise Failure(Code.INVALID_IMAGE, f"Invalid docker_image {text[:80]!r}... ({len(text)} characters): "
                                          f"a repository name is at most {MAX_NAME} characters")
    if match.group("tag") is None and match.group("digest") is None:
        text += ":latest"
    return text


DOCKER_HUB = "docker.io"
_HUB_ALIASES = (DOCKER_HUB, "index.docker.io")


def canonical(reference: str) -> str:
    """The name the engine lists for this reference (its RepoTags form), or a HOLD if it is invalid."""
    text = normalize(reference)
    domain, remainder = _split_domain(text)
    if domain is not None and domain not in _HUB_ALIASES:
        return text
    if remainder.startswith("library/") and "/" not in remainder[len("library/"):]:
        return remainder[len("library/"):]
    return remainder


def canonical_registry(name: str) -> str:
    """An admin's registry name as `registry_host` spells it (ValueError when it is no registry name).

    Accepts what docker's config.json uses too: `https://index.docker.io/v1/` -> `docker.io`.
    """
    text = (name or "").strip()
    text = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", text).split("/", 1)[0]
    if not text or not re.fullmatch(_DOMAIN, text):
        raise ValueError(f"{name!r} is not a registry host[:port]")
    text = text.lower()
    return DOCKER_HUB if text in _HUB_ALIASES else text


def registry_host(reference: str) -> str:
    """The registry the engine pulls this reference from (`docker.io` for Docker Hub)."""
    return canonical_registry(registry_of(normalize(reference)) or DOCKER_HUB)


def check_registry(reference: str, allowed: tuple[str, ...] | list[str]) -> None:
    """HOLD (REGISTRY_NOT_ALLOWED) unless the reference's registry is in `allowed` (empty: any)."""
    if not allowed:
        return
    permitted = {canonical_registry(name) for name in allowed}
    registry = registry_host(reference)
    if registry not in permitted:
        raise Failure(Code.REGISTRY_NOT_ALLOWED,
                      f"Image {reference} is from registry {registry}, which this execute point does not allow "
                      f"(CONDOR_DOCKER_ALLOWED_REGISTRIES = {', '.join(sorted(permitted))}): "
                      "use an image from one of those registries")


def registry_of(reference: str) -> str | None:
    """The registry host[:port] a reference names, or None for the engine's default registry."""
    return _split_domain(reference)[0]


def repository_and_tag(reference: str) -> tuple[str, str]:
    """Split a normalised reference into (repository, tag-or-digest) for the engine's pull API."""
    if "@" in reference:
        repository, digest = reference.split("@", 1)
        return repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository, digest
    head, _, last = reference.rpartition("/")
    name, _, tag = last.partition(":")
    return (f"{head}/{name}" if head else name), tag or "latest"


DOCKER_URL = "docker://"


def is_docker_url(container_image: str | None, source: str | None = None) -> bool:
    """Whether a ContainerImage names a registry image (docker://...) the engine can run."""
    text = (container_image or "").strip()
    return text.lower().startswith(DOCKER_URL) or (source or "").lower() == "docker" and "://" not in text


def container_image_ref(container_image: str | None, source: str | None = None) -> str:
    """The engine reference of a universe = container image, or a HOLD for forms the engine cannot run."""
    text = (container_image or "").strip()
    if not text:
        raise Failure(Code.INVALID_IMAGE, "the container job has no container_image: "
                      "add container_image = docker://<registry>/<image>:<tag> to the submit file")
    if not is_docker_url(text, source):
        raise Failure(Code.INVALID_IMAGE, unsupported_container_reason(text))
    return normalize(text[len(DOCKER_URL):] if text.lower().startswith(DOCKER_URL) else text)


def unsupported_container_reason(container_image: str) -> str:
    """Why this execute point cannot run a non-docker container image, and what to write instead."""
    text = container_image.strip()
    if text.lower().endswith(".sif"):
        form = "a Singularity/Apptainer image file (.sif)"
    elif "://" in text:
        form = f"a {text.split('://', 1)[0]}:// image"
    else:
        form = "a Singularity/Apptainer sandbox directory"
    return (f"container_image {text!r} is {form}; this execute point runs containers with Docker "
            f"(condor_docker) and has no Singularity/Apptainer: use container_image = "
            f"docker://<registry>/<image>:<tag>, or require TARGET.HasSingularity")
