"""The agent's log file, rotated the way HTCondor rotates its daemon logs.

A daemon log that passes `MAX_<NAME>_LOG` bytes is renamed `<log>.old` and a new one
begun; `MAX_NUM_<NAME>_LOG` old files are kept (`<log>.old`, then `<log>.old.1`, ...).
Unset, they follow HTCondor's own `MAX_DEFAULT_LOG` and `MAX_NUM_DEFAULT_LOG`, whose
defaults are 10 MB and 1, so CondorDockerLog sits beside StartLog and behaves like it
rather than growing without bound.
"""
from __future__ import annotations

import logging.handlers
import re
import time
from dataclasses import dataclass
from typing import Callable

DEFAULT_MAX_BYTES = 10 * 1024 * 1024     # HTCondor's MAX_DEFAULT_LOG
DEFAULT_MAX_NUM = 1                      # HTCondor's MAX_NUM_DEFAULT_LOG
_LIMIT = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")
# HTCondor's units for MAX_<NAME>_LOG: its first letter decides (Bytes, Kb, Mb, Gb, Tb; Sec, Min, Hr,
# Day, Wk); M is Mb unless it reads Min (or is a bare lower-case m); no unit is bytes.
_SIZE_UNITS = {"B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
_TIME_UNITS = {"S": 1, "MIN": 60, "H": 3600, "D": 86400, "W": 7 * 86400}


class LogConfigError(ValueError):
    """A rotation knob has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Rotation:
    max_bytes: int      # 0: never rotate by size
    max_num: int        # old files kept
    max_seconds: int = 0   # rotate by age instead (a time unit in MAX_<NAME>_LOG)

    @classmethod
    def from_config(cls, name: str, lookup: Callable[[str], "str | None"]) -> "Rotation":
        """`MAX_<name>_LOG`/`MAX_NUM_<name>_LOG`, else HTCondor's defaults for every daemon log."""
        size_knob = next((k for k in (f"MAX_{name}_LOG", "MAX_DEFAULT_LOG") if lookup(k) not in (None, "")), None)
        num_knob = next((k for k in (f"MAX_NUM_{name}_LOG", "MAX_NUM_DEFAULT_LOG") if lookup(k) not in (None, "")),
                        None)
        amount, is_time = _limit(size_knob, lookup(size_knob)) if size_knob else (DEFAULT_MAX_BYTES, False)
        max_num = _count(num_knob, lookup(num_knob)) if num_knob else DEFAULT_MAX_NUM
        return cls(0, max_num, amount) if is_time else cls(amount, max_num)


def _limit(knob: str, text: str | None) -> tuple[int, bool]:
    """(amount, is a time) from `10000000`, `10 Mb`, `1 Day`, `30 Min`, `5m` (minutes, as HTCondor reads it)."""
    match = _LIMIT.fullmatch(text or "")
    unit = match.group(2) if match else ""
    if unit.upper().startswith("MI") and not unit.upper().startswith("MIB"):
        factor, is_time = _TIME_UNITS["MIN"], True
    elif unit == "m":
        factor, is_time = _TIME_UNITS["MIN"], True
    elif unit and unit[0].upper() in _TIME_UNITS and unit[0].upper() != "M":
        factor, is_time = _TIME_UNITS[unit[0].upper()], True
    elif not unit or unit[0].upper() in _SIZE_UNITS:
        factor, is_time = _SIZE_UNITS[unit[0].upper()] if unit else 1, False
    else:
        match = None
    if match is None:
        raise LogConfigError(f"{knob} = {text!r} is not a log size or age: write e.g. 10000000, 10 Mb, "
                             "1 Day or 30 Min (HTCondor's units)")
    return int(match.group(1)) * factor, is_time


def _count(knob: str, text: str | None) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise LogConfigError(f"{knob} = {text!r} is not a whole number of old log files") from None
    if value < 1:
        raise LogConfigError(f"{knob} = {value}: keep at least 1 old log file")
    return value


def _htcondor_name(default_name: str) -> str:
    """RotatingFileHandler's `<log>.N` as HTCondor names old logs: `<log>.old`, `<log>.old.1`, ..."""
    base, _, number = default_name.rpartition(".")
    index = int(number)
    return f"{base}.old" if index == 1 else f"{base}.old.{index - 1}"


class _AgeRotatingHandler(logging.handlers.RotatingFileHandler):
    """Rotates once the current file is `max_seconds` old (MAX_<NAME>_LOG given as a time, as HTCondor allows)."""

    def __init__(self, path: str, max_seconds: int, backup_count: int) -> None:
        super().__init__(path, backupCount=backup_count)
        self.max_seconds = max_seconds
        self.started = time.time()

    def shouldRollover(self, record: logging.LogRecord) -> bool:   # noqa: N802 (logging's name)
        return self.max_seconds > 0 and time.time() - self.started >= self.max_seconds

    def doRollover(self) -> None:   # noqa: N802 (logging's name)
        super().doRollover()
        self.started = time.time()


def rotating_handler(path: str, rotation: Rotation) -> logging.Handler:
    """A file handler for `path` that rotates as `rotation` says (opened now: an unwritable path raises OSError)."""
    if rotation.max_seconds:
        handler: logging.handlers.RotatingFileHandler = _AgeRotatingHandler(
            path, rotation.max_seconds, rotation.max_num)
    else:
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=rotation.max_bytes,
                                                       backupCount=rotation.max_num)
    handler.namer = _htcondor_name
    return handler
