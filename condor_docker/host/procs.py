"""Which process a pid is: its start time, so that a recycled pid is never taken for the old process."""
from __future__ import annotations


def start_ticks(pid: int, proc_root: str = "/proc") -> int | None:
    """The process's start time (clock ticks after boot, /proc/<pid>/stat field 22); None when it is gone.

    A pid and this number name one process for the life of the machine: pid_max is
    small (32768 here) and a job's user can fork until it holds a pid it wants.
    """
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as stream:
            text = stream.read()
    except OSError:
        return None
    # field 2 (comm) is in parentheses and may hold spaces or ')': split after the last one
    fields = text[text.rfind(b")") + 2:].split()
    try:
        return int(fields[19])   # fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None
