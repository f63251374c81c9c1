"""What a container used, measured where it cannot be missed: its own parent cgroup.

The engine's statistics stream gives one sample a second and nothing after the
container's last process exits (the engine deletes the container's cgroup), so
a memory peak in the job's last second, or CPU burnt after the last sample, was
lost.  Instead the agent creates each container under a cgroup of its own,
`<parent>/<container name>` (the engine makes `<that>/<container id>` below it,
cgroupfs driver).  Cgroups count a child's CPU and memory in every ancestor,
and an ancestor keeps its counters after the child is gone, so once the
container has exited the agent reads the final figures there and then removes
the directory:

    cgroup v1  cpuacct/<p>/cpuacct.stat (user/system, USER_HZ ticks),
               memory/<p>/memory.max_usage_in_bytes (peak)
    cgroup v2  <p>/cpu.stat (user_usec/system_usec), <p>/memory.peak (kernel >= 5.19)

`<parent>` is the launcher's HTCondor job cgroup where there is one (cgroup v1;
then HTCondor's own accounting of the job cgroup covers the container too, see
docs/USAGE-ACCOUNTING.md), else `/condor_docker`.

Disk: the scratch dir (walked without following links) plus the container's
writable layer (the engine's SizeRw).
"""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from typing import Any

from ..host.cgroups import CGROUP_ROOT, is_cgroup_v2

log = logging.getLogger("condor_docker.usage")



@dataclass(frozen=True)
class Usage:
    """What the container used: CPU seconds, peak memory, network and disk (the last sample)."""
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    peak_memory_mb: int = 0
    network_in_bytes: int = 0
    network_out_bytes: int = 0
    disk_kb: int = 0

    @classmethod
    def from_dict(cls, data: dict | None) -> "Usage":
        known = {name: value for name, value in (data or {}).items() if name in cls.__dataclass_fields__}
        return cls(**known)


def mb_ceil(value_bytes: int) -> int:
    return (int(value_bytes) + 1024 * 1024 - 1) // (1024 * 1024)


@dataclass(frozen=True)
class ContainerCgroup:
    """The per-container parent cgroup: read its counters, then remove it."""
    parent: str                  # absolute within the hierarchy, e.g. /condor_docker/HTCJob_1_0_slot1_1
    root: str = CGROUP_ROOT

    @property
    def v2(self) -> bool:
        return is_cgroup_v2(self.root)

    def _dir(self, controller: str | None) -> str:
        rel = self.parent.lstrip("/")
        return os.path.join(self.root, rel) if controller is None else os.path.join(self.root, controller, rel)

    def read(self) -> Usage | None:
        """The cumulative CPU and the peak memory of everything that ran below the parent; None if unreadable."""
        try:
            if self.v2:
                return self._read_v2()
            return self._read_v1()
        except (OSError, ValueError) as err:
            log.debug("cannot read cgroup %s: %s", self.parent, err)
            return None

    def _read_v1(self) -> Usage:
        ticks = os.sysconf("SC_CLK_TCK")
        fields = _key_values(os.path.join(self._dir("cpuacct"), "cpuacct.stat"))
        with open(os.path.join(self._dir("memory"), "memory.max_usage_in_bytes")) as stream:
            peak = int(stream.read().strip())
        return Usage(fields.get("user", 0) / ticks, fields.get("system", 0) / ticks, mb_ceil(peak))

    def _read_v2(self) -> Usage:
        fields = _key_values(os.path.join(self._dir(None), "cpu.stat"))
        peak = 0
        for name in ("memory.peak", "memory.current"):
            try:
                with open(os.path.join(self._dir(None), name)) as stream:
                    peak = int(stream.read().strip())
                break
            except OSError:
                continue
        return Usage(fields.get("user_usec", 0) / 1e6, fields.get("system_usec", 0) / 1e6, mb_ceil(peak))

    def remove(self) -> None:
        """rmdir the parent in every hierarchy (it is empty once the engine removed the container).

        Podman (cgroupfs manager) also puts its conmon in `<parent>/conmon` and leaves that
        cgroup behind: empty children go first (rmdir refuses any cgroup with a process).
        """
        if self.v2:
            dirs = [self._dir(None)]
        else:
            try:
                controllers = sorted(os.listdir(self.root))
            except OSError:
                return
            dirs = [self._dir(c) for c in controllers]
        for path in dirs:
            _remove_empty_children(path)
            try:
                os.rmdir(path)
            except FileNotFoundError:
                continue
            except OSError as err:
                log.warning("cannot remove cgroup %s: %s", path, err.strerror)


def _remove_empty_children(path: str) -> None:
    try:
        children = [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for child in children:
        try:
            os.rmdir(child)
        except OSError as err:
            log.warning("cannot remove cgroup %s: %s", child, err.strerror)


def _key_values(path: str) -> dict[str, int]:
    values = {}
    with open(path) as stream:
        for line in stream:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                values[parts[0]] = int(parts[1])
    return values


def network_bytes(sample: dict) -> tuple[int, int]:
    """(received, sent) summed over the container's interfaces in one engine stats sample."""
    networks = sample.get("networks") or {}
    rx = sum(int(n.get("rx_bytes") or 0) for n in networks.values())
    tx = sum(int(n.get("tx_bytes") or 0) for n in networks.values())
    return rx, tx


MAX_WALK_ENTRIES = 2_000_000   # a scratch dir with more entries is held: its size cannot be known cheaply
MAX_WALK_DEPTH = 128           # two fds per level (the dir and its listing): at most 256 per walk
MAX_WALK_LINKS = 100_000       # hard-linked inodes remembered per walk (about 13 MB); past it, links charge in full


@dataclass(frozen=True)
class TreeSize:
    """What a walk found: KB used, and whether it saw everything (False: over a cap, named in `why`)."""
    kb: int
    complete: bool = True
    why: str = ""


def tree_size(path: str, max_entries: int = MAX_WALK_ENTRIES, max_depth: int = MAX_WALK_DEPTH,
              max_links: int = MAX_WALK_LINKS) -> TreeSize:
    """Disk blocks used under `path`, never following a link, with fds bounded by the depth.

    The agent runs this as root in a tree the job's user controls and may change
    while we walk it, so every directory is opened relative to its parent's fd
    with O_NOFOLLOW: a directory swapped for a link is skipped, never followed.
    A directory is opened only when the walk descends into it and closed when it
    leaves, so a job with 100,000 sibling directories costs two fds per level,
    not 100,000.  Hard-linked files count once, as long as the walk remembers
    their (device, inode): it remembers at most `max_links` of them (a job's
    millions of links must not grow the root agent's memory without bound), and
    once that set is full a multiply-linked file it does not know is charged in
    full at each of its links: an over-charge, never a file skipped.  Past
    `max_entries` entries or `max_depth` levels the size is incomplete: the
    caller must not take that for "within the limit" (a job that first makes a
    million empty files would hide its big ones).  So is a directory root may not
    read, or one on another device: a job's FUSE mount (fusermount is setuid) over
    a directory hides from root, in this mount namespace, what the container
    still writes beneath it.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        top = os.open(path, flags)
    except FileNotFoundError:
        return TreeSize(0)
    except OSError as err:
        return TreeSize(0, False, f"{path} cannot be opened ({err.strerror})")
    device = os.fstat(top).st_dev
    seen: set[tuple[int, int]] = set()
    total = entries = 0
    stack: list[tuple[int, Any, str]] = []   # (fd, its listing, its path)
    try:
        stack.append((top, _listing(top), path))
        while stack:
            fd, listing, where = stack[-1]
            entry = next(listing, None) if listing is not None else None
            if entry is None:
                stack.pop()
                _close(fd, listing)
                continue
            entries += 1
            if entries > max_entries:
                return TreeSize(total // 1024, False, f"more than {max_entries} entries")
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:   # removed while we walk
                continue
            except OSError as err:      # root refused: another user's FUSE mount hides what is below it
                return TreeSize(total // 1024, False, f"{os.path.join(where, entry.name)} cannot be read "
                                                      f"({err.strerror})")
            if stat.S_ISDIR(info.st_mode) and info.st_dev != device:
                return TreeSize(total // 1024, False, f"a file system is mounted on "
                                                      f"{os.path.join(where, entry.name)}")
            if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):   # only hard links can repeat
                inode = (info.st_dev, info.st_ino)
                if inode in seen:
                    continue
                if len(seen) < max_links:   # else: not remembered, so charged again at its next link
                    seen.add(inode)
            total += info.st_blocks * 512
            if not stat.S_ISDIR(info.st_mode):
                continue
            if len(stack) >= max_depth:
                return TreeSize(total // 1024, False, f"directories nested deeper than {max_depth} levels")
            try:
                child = os.open(entry.name, flags, dir_fd=fd)
            except OSError as err:
                if isinstance(err, PermissionError):
                    return TreeSize(total // 1024, False, f"{os.path.join(where, entry.name)} cannot be "
                                                          f"opened ({err.strerror})")
                continue   # removed, or swapped for a link (never followed) while we walk
            stack.append((child, _listing(child), os.path.join(where, entry.name)))
    finally:
        for fd, listing, _where in stack:
            _close(fd, listing)
    return TreeSize(total // 1024)


def _listing(fd: int) -> Any:
    try:
        return os.scandir(fd)
    except OSError:
        return None


def _close(fd: int, listing: Any) -> None:
    if listing is not None:
        listing.close()
    os.close(fd)

