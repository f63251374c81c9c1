"""File descriptors: writing the way a relay must (every byte, however short each write() is), and
reading a job's ad file the one safe way (a plain file of an ad's size, never a FIFO or a device).

No dataclasses or the like: the launcher imports this on every job's start.
"""
from __future__ import annotations

import os
import stat

READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC   # a FIFO must not hang the open


def write_all(fd: int, data: bytes) -> None:
    """os.write() until all of `data` is written (a pipe or pty may take less at a time)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


MAX_AD_BYTES = 4 << 20   # a job or machine ad larger than this is not one HTCondor wrote


class NotPlainFile(Exception):
    """Why an open file is not one to read: a phrase, e.g. "must be a plain file, not a FIFO"."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symlink"))


def file_kind(mode: int) -> str:
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def read_plain_file(fd: int, max_bytes: int = MAX_AD_BYTES) -> bytes:
    """All of an open file (opened with READ_FLAGS, or through safefs) that is a regular
    file with one link and at most `max_bytes`; NotPlainFile otherwise.  The fd stays open.

    The one rule for the ads of a job: the agent's (agent/scratch.py, through its held
    scratch dir fd) and the launcher's own .job.ad (starter/launch.py).
    """
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise NotPlainFile(f"must be a plain file, not {file_kind(info.st_mode)}")
    if info.st_nlink != 1:   # a hard link could be another user's file
        raise NotPlainFile(f"must be a plain file with one name, not {info.st_nlink} hard links")
    if info.st_size > max_bytes:
        raise NotPlainFile(f"is too large ({info.st_size} bytes)")
    with os.fdopen(fd, "rb", closefd=False) as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise NotPlainFile(f"is too large (over {max_bytes} bytes)")
    return data
