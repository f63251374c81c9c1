"""File transfer for `condor_docker run`: inputs into the scratch dir, outputs back to the submit dir.

As HTCondor's file transfer does for a docker job: `transfer_input_files` (and the
executable when `transfer_executable` is true) are copied into the scratch dir and
given to the job's user; after the job, the files named by `transfer_output_files`,
or else every top-level file the job created or changed, are copied back to the
submit dir (`transfer_output_remaps` applied).  A file that cannot be copied holds
the job (BAD_JOB_AD) with the path and the fix.
"""
from __future__ import annotations

import logging
import os
import shutil

from ..core import ads
from ..core.failures import Code, Failure
from .submitfile import Proc

log = logging.getLogger("condor_docker.runner")


def transfer_in(proc: Proc, scratch: str, uid: int, gid: int) -> None:
    """transfer_input_files (and the executable, when transferred) copied into the scratch dir, owned by the job."""
    sources = list(proc.transfer_input)
    if ads.get_bool(proc.ad, "TransferExecutable", False):
        sources.append(ads.get_str(proc.ad, "Cmd"))
    for source in sources:
        path = os.path.join(proc.iwd, source)
        target = os.path.join(scratch, os.path.basename(source.rstrip("/")))
        try:
            if os.path.isdir(path):
                shutil.copytree(path, target, symlinks=True)
            else:
                shutil.copy2(path, target)
        except OSError as err:
            raise Failure(Code.BAD_JOB_AD, f"cannot transfer input file {path}: {err.strerror}: "
                                           "fix transfer_input_files or executable") from err
        _chown_tree(target, uid, gid)


def transfer_out(proc: Proc, scratch: str) -> None:
    """Named outputs, or (like HTCondor) every top-level file the job created or changed."""
    transferred_in = {os.path.basename(s.rstrip("/")) for s in proc.transfer_input}
    names = proc.transfer_output
    if names is None:
        names = tuple(name for name in sorted(os.listdir(scratch))
                      if not name.startswith(".") and name not in ("tmp", "var") and name not in transferred_in
                      and os.path.isfile(os.path.join(scratch, name))
                      and not (ads.get_bool(proc.ad, "TransferExecutable", False)
                               and name == os.path.basename(ads.get_str(proc.ad, "Cmd") or "")))
    for name in names:
        source = os.path.join(scratch, name)
        if not os.path.lexists(source):
            log.warning("transfer_output_files names %s but the job did not create it", name)
            continue
        if os.path.islink(source) or not os.path.isfile(source):
            log.warning("not transferring %s: not a regular file", name)
            continue
        remaps = dict(proc.output_remaps)
        destination = remaps.get(name, remaps.get(os.path.basename(name), os.path.basename(name)))
        target = os.path.join(proc.iwd, destination)
        try:
            shutil.copyfile(source, target)
        except OSError as err:
            raise Failure(Code.BAD_JOB_AD, f"cannot transfer output {name} to {target}: {err.strerror}: "
                                           "fix transfer_output_remaps") from err


def _chown_tree(path: str, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
