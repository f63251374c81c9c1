"""Race-safe directory access for root acting inside directories a job owns.

The agent is root; a job's user owns its scratch dir and can swap any entry in
it for a symbolic link at any moment.  A path checked once and opened again
later ("time of check to time of use") lets the job point root at a directory
of its choice.  So every root file operation on a job's behalf goes through
directory file descriptors that were opened once, without following any
link, and checked through the descriptor (fstat), never through a path
resolved again later.

`open_no_symlinks(path)` resolves a whole absolute path refusing every link:
with openat2(2) and RESOLVE_NO_SYMLINKS when the kernel has it (Linux >= 5.6;
not in Python's os module, so through ctypes), else by walking it one
component at a time with openat(O_NOFOLLOW | O_DIRECTORY) from "/".
`open_beneath(dir_fd, name)` opens one entry of an already open directory the
same way.  Both raise OSError (ELOOP/ENOTDIR for a link) and never return a
descriptor to anything but a directory (or, with `directory=False`, a file).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from dataclasses import dataclass

SYS_OPENAT2 = 437           # the same number on x86_64 and aarch64 (new syscalls are unified)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
AT_FDCWD = -100

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc() if platform.system() == "Linux" else None
_OPENAT2_MISSING = [_LIBC is None]  # set once the kernel said ENOSYS


def _openat2(dir_fd: int, path: str, flags: int, resolve: int) -> int | None:
    """openat2(2), or None when this kernel (or libc) does not have it."""
    if _OPENAT2_MISSING[0]:
        return None
    how = _OpenHow(flags, 0, resolve)
    fd = _LIBC.syscall(SYS_OPENAT2, ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(path)),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return fd
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.E2BIG):
        _OPENAT2_MISSING[0] = True
        return None
    raise OSError(err, os.strerror(err), path)


def _walk(dir_fd: int, parts: list[str], flags: int) -> int:
    """openat one component at a time, never following a link (the fallback of openat2)."""
    current = os.dup(dir_fd) if dir_fd != AT_FDCWD else os.open("/", DIR_FLAGS)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = os.open(part, flags if last else DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = following
        result, current = current, -1
        return result
    finally:
        if current >= 0:
            os.close(current)


def _components(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise OSError(errno.EINVAL, "a path with '..' is refused", path)
    return parts


def open_no_symlinks(path: str, *, directory: bool = True) -> int:
    """Open an absolute path with no symbolic link anywhere in it (ELOOP/ENOTDIR if there is one)."""
    if not os.path.isabs(path):
        raise OSError(errno.EINVAL, "not an absolute path", path)
    parts = _components(path)
    flags = DIR_FLAGS if directory else FILE_FLAGS
    if not parts:
        return os.open("/", DIR_FLAGS)
    fd = _openat2(AT_FDCWD, "/" + "/".join(parts), flags,
                  RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    return fd if fd is not None else _walk(AT_FDCWD, parts, flags)


def open_beneath(dir_fd: int, name: str, *, directory: bool = True) -> int:
    """Open `name` (relative, no '..') inside an open directory, following no link."""
    parts = _components(name)
    if not parts or os.path.isabs(name):
        raise OSError(errno.EINVAL, "not a relative name", name)
    flags = DIR_FLAGS if directory else FILE_FLAGS
    fd = _openat2(dir_fd, "/".join(parts), flags,
                  RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    return fd if fd is not None else _walk(dir_fd, parts, flags)


@dataclass(frozen=True)
class DirIdentity:
    """What identifies a directory whatever its path: (device, inode)."""
    dev: int
    ino: int

    @classmethod
    def of_fd(cls, fd: int) -> "DirIdentity":
        info = os.fstat(fd)
        return cls(info.st_dev, info.st_ino)


def same_directory(path: str, identity: DirIdentity) -> bool:
    """Whether `path`, resolved now with no link, is still the directory we hold."""
    try:
        fd = open_no_symlinks(path)
    except OSError:
        return False
    try:
        return DirIdentity.of_fd(fd) == identity
    finally:
        os.close(fd)


def is_safe_parent(info: os.stat_result, trusted_uids: set[int]) -> bool:
    """A directory only trusted users can change entries of: trusted owner, no group/other write."""
    return stat.S_ISDIR(info.st_mode) and info.st_uid in trusted_uids and not info.st_mode & 0o022
