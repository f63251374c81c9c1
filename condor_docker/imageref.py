"""Docker image references: validate and normalise `DockerImage` as the engine would.

`:latest` is added only when the reference has neither a tag nor a digest; the
`host:port/` prefix of a registry is not a tag (`127.0.0.1:5000/img` -> `127.0.0.1:5000/img:latest`).
An invalid reference is a HOLD: no registry could ever serve it.
"""
from __future__ import annotations

import re

from .failures import Code, Failure

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
    domain, remainder = _split_domain(text)
    match = _REFERENCE.match(remainder)
    if match is None or (domain is not None and not re.fullmatch(_DOMAIN, domain)):
        hint = " (repository names must be lower case)" if remainder != remainder.lower() else ""
        raise Failure(Code.INVALID_IMAGE,
                      f"Invalid docker_image {text!r}{hint}: write [registry[:port]/]name[:tag][@digest]")
    if match.group("tag") is None and match.group("digest") is None:
        text += ":latest"
    return text


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
