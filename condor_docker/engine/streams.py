"""The engine's multiplexed attach/exec streams, read as (stream number, bytes) frames.

The only place outside client.py that touches the Docker SDK's internals:
docker-py's frame parser, so that the agent's exec relay and the container
run read the 8-byte stream headers the same way.
"""
from __future__ import annotations

from typing import Any, Iterator

from docker.utils.socket import frames_iter

STDOUT = 1
STDERR = 2


def frames(stream: Any) -> Iterator[tuple[int, bytes]]:
    """(stream number, data) per frame of a non-tty attach or exec stream."""
    yield from frames_iter(stream, tty=False)
