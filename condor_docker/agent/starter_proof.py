"""What proves a peer is the job of the condor_starter that owns its scratch dir.

A job's files (.job.ad, .machine.ad) and environment (_CONDOR_SLOT) are
written where the job can change them, so they cannot say which job or slot a
process belongs to.  The kernel can: the starter makes the scratch dir
`<EXECUTE>/dir_<starter pid>`, runs as root (or condor), and the job's hooks and
launcher are its descendants.  So a peer is the starter's job when

    one of the peer's ancestors (psutil, from /proc) is a process named
    condor_starter, owned by a trusted uid, whose pid P gives dir_P = the
    scratch dir's name;

and that starter's command line names the slot (`-a slot1_1`), which a job
cannot rewrite.  Without such an ancestor (a machine with no HTCondor, the
tests' emulated starter) the agent goes on with what the job says, unless the
admin sets CONDOR_DOCKER_REQUIRE_STARTER = true.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

STARTER_NAME = "condor_starter"
_SLOT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
MAX_DEPTH = 32


@dataclass(frozen=True)
class StarterProof:
    starter_pid: int
    slot: str | None      # from the starter's own command line, when it says


def slot_from_cmdline(cmdline: list[str]) -> str | None:
    """The slot a starter serves, from its `-a <slot>` argument (its log-name suffix)."""
    for index, word in enumerate(cmdline[:-1]):
        if word == "-a" and _SLOT.match(cmdline[index + 1]):
            return cmdline[index + 1]
    return None


def _ancestors(peer_pid: int) -> Iterator[Any]:
    """The peer's ancestors, nearest first, at most MAX_DEPTH (psutil processes; nothing on error)."""
    import psutil

    try:
        process = psutil.Process(peer_pid)
        for _ in range(MAX_DEPTH):
            process = process.parent()
            if process is None:
                return
            yield process
    except (psutil.Error, OSError):
        return


def _is_trusted_starter(process: Any, trusted_uids: set[int]) -> bool:
    import psutil

    try:
        with process.oneshot():
            return process.name() == STARTER_NAME and process.uids().real in trusted_uids
    except (psutil.Error, OSError):
        return False


def find_starter(peer_pid: int, scratch_name: str | None, trusted_uids: set[int]) -> StarterProof | None:
    """The starter of `scratch_name` among the peer's ancestors (any starter when None), or None."""
    import psutil

    for process in _ancestors(peer_pid):
        if scratch_name is not None and scratch_name != f"dir_{process.pid}":
            continue
        if _is_trusted_starter(process, trusted_uids):
            try:
                return StarterProof(process.pid, slot_from_cmdline(process.cmdline()))
            except (psutil.Error, OSError):
                return None
        if scratch_name is not None:
            return None
    return None


def descends_from(peer_pid: int, starter_pid: int, trusted_uids: set[int]) -> bool:
    """Whether `starter_pid` is a trusted condor_starter among the peer's ancestors (the kernel's word).

    A container records the starter that proved its job (label starter_pid); an
    op on it (signal, suspend, cleanup, exec) must come from that starter's
    descendants, so that two submitters mapped to one uid cannot reach each
    other's containers.  A reused pid is not that starter unless it is again
    a trusted condor_starter.
    """
    for process in _ancestors(peer_pid):
        if process.pid == starter_pid:
            return _is_trusted_starter(process, trusted_uids)
    return False
