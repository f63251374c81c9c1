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
from dataclasses import dataclass
from typing import Callable

DEFAULT_MAX_BYTES = 10 * 1024 * 1024     # HTCondor's MAX_DEFAULT_LOG
DEFAULT_MAX_NUM = 1                      # HTCondor's MAX_NUM_DEFAULT_LOG
_SIZE = re.compile(r"\s*(\d+)\s*([kmg]?)b?\s*", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


class LogConfigError(ValueError):
    """A rotation knob has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Rotation:
    max_bytes: int      # 0: never rotate
    max_num: int        # old files kept

    @classmethod
    def from_config(cls, name: str, lookup: Callable[[str], "str | None"]) -> "Rotation":
        """`MAX_<name>_LOG`/`MAX_NUM_<name>_LOG`, else HTCondor's defaults for every daemon log."""
        size_knob = next((k for k in (f"MAX_{name}_LOG", "MAX_DEFAULT_LOG") if lookup(k) not in (None, "")), None)
        num_knob = next((k for k in (f"MAX_NUM_{name}_LOG", "MAX_NUM_DEFAULT_LOG") if lookup(k) not in (None, "")),
                        None)
        max_bytes = _size(size_knob, lookup(size_knob)) if size_knob else DEFAULT_MAX_BYTES
        max_num = _count(num_knob, lookup(num_knob)) if num_knob else DEFAULT_MAX_NUM
        return cls(max_bytes, max_num)


def _size(knob: str, text: str | None) -> int:
    match = _SIZE.fullmatch(text or "")
    if match is None:
        raise LogConfigError(f"{knob} = {text!r} is not a size in bytes (e.g. 10000000, or 10M)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


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


def rotating_handler(path: str, rotation: Rotation) -> logging.Handler:
    """A file handler for `path` that rotates as `rotation` says (opened now: an unwritable path raises OSError)."""
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=rotation.max_bytes, backupCount=rotation.max_num)
    handler.namer = _htcondor_name
    return handler
