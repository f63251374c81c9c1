"""A job's scratch dir, opened once by root, and the ads read from it.

The scratch dir is named by the peer (an untrusted process; docs/TRUST-MODEL.md),
so everything here checks before it trusts and never resolves a path twice:

- **The scratch dir** must be a direct entry `<EXECUTE>/<name>` of one of the
  admin's execute dirs (CONDOR_DOCKER_EXECUTE_DIRS), which must be owned by root
  (or condor) and writable by its owner alone: the job then cannot rename,
  replace or link its scratch dir, so its path stays what was checked.  Nested
  paths are refused (a component the job owns could be swapped for a link).  The
  execute dir is opened with no symbolic link in its path (openat2
  RESOLVE_NO_SYMLINKS, else an O_NOFOLLOW walk), the scratch dir through that
  fd, and its owner is read from the held fd (`ScratchDir`); every later root
  action goes through that fd, never through the path again.
- **`.job.ad` and `.machine.ad`** are read through the held fd, with no link
  followed, as regular files with one link: a link planted there must not
  make root read (and echo in an error) another file.

Who may act on what is agent/policy.py; the trusted slot size agent/slots.py.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..core import ads
from ..core.failures import Code, Failure
from ..core.request import JobRequest, from_ads
from ..core.settings import Settings
from ..host import fdio, safefs
from .policy import refuse, trusted_owners

JOB_AD = ".job.ad"
MACHINE_AD = ".machine.ad"
MAX_AD_BYTES = fdio.MAX_AD_BYTES


@dataclass(frozen=True)
class ScratchPlace:
    """Where a scratch dir sits, checked by path alone (nothing opened yet).

    Two layouts, one per HTCondor series:
    - 25.0: `<EXECUTE>/dir_<pid>` is the scratch dir itself (`inner` is None);
    - 25.13: `<EXECUTE>/dir_<pid>/scratch`, where `dir_<pid>` belongs to the
      condor user and the job owns only `scratch/` (and `user/`).
    Either way every component the job could swap is the last one, opened
    beneath an fd of a directory the job cannot write.
    """
    execute: str                # the execute dir's real path
    job_dir: str                # dir_<starter pid>: what the starter proof matches
    inner: str | None = None    # "scratch" in the 25.13 layout

    @property
    def path(self) -> str:
        base = os.path.join(self.execute, self.job_dir)
        return os.path.join(base, self.inner) if self.inner else base


NESTED_SCRATCH = "scratch"


def check_scratch_path(path: str, settings: Settings) -> ScratchPlace:
    """Where the scratch dir sits: directly in an execute dir, or 25.13's `dir_<pid>/scratch`.

    Nothing deeper is ever a scratch dir, and only an entry of a directory the
    job cannot write keeps its path: a longer path has components the job could swap.
    """
    if not isinstance(path, str) or not path or "\0" in path or not os.path.isabs(path):
        raise refuse(f"scratch dir {str(path)[:200]!r} must be an absolute path")
    normal = os.path.normpath(path)
    parent, name = os.path.split(normal)
    if name in ("", ".", "..") or "/.." in path or "/./" in path + "/":
        raise refuse(f"scratch dir {path} is not a plain path: refused")
    grandparent, job_dir = os.path.split(parent)
    for execute in settings.execute_dirs:
        base = os.path.normpath(execute)
        bases = (base, os.path.realpath(base))
        if parent in bases:
            return ScratchPlace(os.path.realpath(base), name)
        if name == NESTED_SCRATCH and grandparent in bases and job_dir not in ("", ".", ".."):
            return ScratchPlace(os.path.realpath(base), job_dir, NESTED_SCRATCH)
    raise refuse(f"scratch dir {path} is not under the execute dirs ({', '.join(settings.execute_dirs)}) "
                 "of this machine as HTCondor lays them out (<EXECUTE>/dir_<pid>, or "
                 "<EXECUTE>/dir_<pid>/scratch from 25.13 on)")


@dataclass
class ScratchDir:
    """A job's scratch dir, opened once and checked: every later root action goes through `fd`."""
    path: str
    fd: int
    identity: safefs.DirIdentity
    job_dir: str = ""           # dir_<starter pid>, the name the starter proof matches

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "ScratchDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def still_in_place(self) -> bool:
        """Whether the path (resolved again, no links) is still the directory we hold."""
        return safefs.same_directory(self.path, self.identity)


def _open_execute_dir(execute: str) -> int:
    try:
        fd = safefs.open_no_symlinks(execute)
    except OSError as err:
        raise refuse(f"execute dir {execute} cannot be opened without following links: {err.strerror}: "
                     "set CONDOR_DOCKER_EXECUTE_DIRS to its real path") from err
    info = os.fstat(fd)
    if not safefs.is_safe_parent(info, trusted_owners()):
        os.close(fd)
        raise refuse(f"execute dir {execute} must be owned by root or condor and writable by its owner alone "
                     f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}): fix its permissions")
    return fd


def _open_job_dir(execute_fd: int, place: ScratchPlace) -> int:
    """25.13's `dir_<pid>`, beneath the execute dir: it must be the condor user's, as the starter makes it."""
    try:
        fd = safefs.open_beneath(execute_fd, place.job_dir)
    except OSError as err:
        raise refuse(f"job dir {os.path.join(place.execute, place.job_dir)} cannot be opened as a directory "
                     f"without following symbolic links: {err.strerror}") from err
    info = os.fstat(fd)
    if not safefs.is_safe_parent(info, trusted_owners()):
        os.close(fd)
        raise refuse(f"job dir {os.path.join(place.execute, place.job_dir)} is owned by uid {info.st_uid} "
                     f"with mode {stat.S_IMODE(info.st_mode):04o}; HTCondor's starter makes it the condor "
                     "user's, writable by its owner alone")
    return fd


def open_scratch(path: str, uid: int, settings: Settings) -> ScratchDir:
    """Check the scratch dir and open it through its execute dir's fd, following no link."""
    place = check_scratch_path(path, settings)
    parent_fd = _open_execute_dir(place.execute)
    try:
        if place.inner is not None:
            job_dir_fd = _open_job_dir(parent_fd, place)
            os.close(parent_fd)
            parent_fd = job_dir_fd
        fd = safefs.open_beneath(parent_fd, place.inner or place.job_dir)
    except OSError as err:
        raise refuse(f"scratch dir {path} cannot be opened as a directory without following symbolic links: "
                     f"{err.strerror}") from err
    finally:
        os.close(parent_fd)
    info = os.fstat(fd)
    if info.st_uid != uid:
        os.close(fd)
        raise refuse(f"scratch dir {path} is owned by uid {info.st_uid}, not by the job's uid {uid}")
    return ScratchDir(place.path, fd, safefs.DirIdentity(info.st_dev, info.st_ino), place.job_dir)


def read_ad_text(dir_fd: int, name: str, *, required: bool) -> str | None:
    """A file of the scratch dir: regular, one link, no symlink; None when absent and optional."""
    try:
        fd = safefs.open_beneath(dir_fd, name, directory=False)
    except FileNotFoundError:
        if required:
            raise Failure(Code.BAD_JOB_AD, f"the scratch dir has no {name}") from None
        return None
    except OSError as err:
        raise refuse(f"{name} in the scratch dir cannot be read safely: {err.strerror}") from err
    try:
        return fdio.read_plain_file(fd, MAX_AD_BYTES).decode("utf-8", errors="replace")
    except fdio.NotPlainFile as why:
        raise refuse(f"{name} in the scratch dir {why}") from None
    finally:
        os.close(fd)


def read_job_files(path: str, uid: int, settings: Settings, *, job_ad_required: bool = True
                   ) -> tuple[str, str | None, str | None]:
    """(scratch dir, .job.ad text, .machine.ad text), read only after the dir passed the checks."""
    with open_scratch(path, uid, settings) as scratch:
        return scratch.path, *read_scratch_ads(scratch, job_ad_required=job_ad_required)


def read_scratch_ads(scratch: ScratchDir, *, job_ad_required: bool = True) -> tuple[str | None, str | None]:
    """(.job.ad text, .machine.ad text) through the held scratch dir fd."""
    return (read_ad_text(scratch.fd, JOB_AD, required=job_ad_required),
            read_ad_text(scratch.fd, MACHINE_AD, required=False))


def request_from_texts(job_text: str, machine_text: str | None, *, uid: int, gid: int, scratch_dir: str,
                       starter_env: dict | None = None, slot: str | None = None) -> JobRequest:
    """Parse the two ads (HOLD on a bad ad) into a JobRequest for this peer."""
    job_ad = ads.parse_ad(job_text, "job ad")
    machine_ad = ads.parse_ad(machine_text or "", "machine ad")
    return from_ads(job_ad, machine_ad, uid=uid, gid=gid, scratch_dir=scratch_dir,
                    starter_env=starter_env, slot=slot)
