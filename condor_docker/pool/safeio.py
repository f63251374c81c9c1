"""What root in a pool node opens, opened so that no user of the node can redirect it.

pool/ may not import host/ (the layering rule), so this is the pool's own small
copy of the technique: walk a path one component at a time through directory
fds, never letting the kernel follow a link on its own, and check what each fd
is with fstat.

`open_trusted` is for files root reads as its own (the pool secret): every
directory on the way and every link followed must be root-owned, and a
directory writable by group or other must be sticky (then no one else can
rename or remove root's entries in it).  Kubernetes secret volumes are a chain
of root-owned links (`key -> ..data/key`, `..data -> ..<timestamp>`): they pass.
"""
from __future__ import annotations

import os
import stat

MAX_LINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class UntrustedPath(OSError):
    """The path can be changed by someone other than root; str() says where and why."""


def _check_dir(st: os.stat_result, where: str) -> None:
    if st.st_uid != 0:
        raise UntrustedPath(f"{where} is not root-owned (uid {st.st_uid})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        raise UntrustedPath(f"{where} is writable by group or other (mode {stat.S_IMODE(st.st_mode):04o})")


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def open_trusted(path: str) -> int:
    """An O_RDONLY fd of the regular file at `path`, reached only through root's directories and links.

    Raises FileNotFoundError if something on the way is missing, UntrustedPath if
    anything on the way could be swapped by another user or the file is not a
    regular file; the caller checks the file's own owner and mode on the fd.
    """
    parts = _split(os.path.abspath(path))
    fd = os.open("/", _DIR_FLAGS)
    where = "/"
    links = 0
    try:
        _check_dir(os.fstat(fd), where)
        while parts:
            name = parts.pop(0)
            entry = os.stat(name, dir_fd=fd, follow_symlinks=False)
            shown = os.path.join(where, name)
            if stat.S_ISLNK(entry.st_mode):
                if entry.st_uid != 0:
                    raise UntrustedPath(f"{shown} is a link owned by uid {entry.st_uid}, not root")
                links += 1
                if links > MAX_LINKS:
                    raise UntrustedPath(f"{path}: more than {MAX_LINKS} links")
                target = os.readlink(name, dir_fd=fd)
                parts = _split(target) + parts
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", _DIR_FLAGS)
                    where = "/"
                continue
            if parts or name == "..":
                if name == "..":
                    shown = os.path.dirname(where)
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd, where = next_fd, shown
                _check_dir(os.fstat(fd), where)
                if not parts:
                    raise UntrustedPath(f"{path} is a directory, not a file")
                continue
            if not stat.S_ISREG(entry.st_mode):
                raise UntrustedPath(f"{shown} is not a regular file")
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
            opened = os.fstat(file_fd)
            if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (entry.st_dev, entry.st_ino):
                os.close(file_fd)
                raise UntrustedPath(f"{shown} changed while it was opened")
            return file_fd
        raise UntrustedPath(f"{path} is a directory, not a file")
    finally:
        os.close(fd)


def read_fd(fd: int, limit: int) -> bytes:
    """At most limit + 1 bytes from fd (so the caller can tell 'too large')."""
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
