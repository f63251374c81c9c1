"""Writing to a file descriptor the way a relay must: every byte, however short each write() is."""
from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> None:
    """os.write() until all of `data` is written (a pipe or pty may take less at a time)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
