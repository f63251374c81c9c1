"""Peer-supplied text in a log line: control characters escaped, length capped.

The agent logs one line per request with values a job chose (op name,
container, slot, reasons).  A newline in one of them would start a line of the
job's making in a root daemon's log (`INFO condor_docker.agent: op=launch
uid=0 ...`), so every such value goes through `clean()`; `SafeLines`, a
logging filter on the agent's handlers, does the same to every message as a
whole, so no log call can forge a line.
"""
from __future__ import annotations

import logging
import re
from typing import Any

MAX_VALUE = 256          # one peer value in a log line
MAX_MESSAGE = 8192       # one log message as a whole

# C0 controls, DEL, C1 controls, the Unicode line/paragraph separators and lone
# surrogates (JSON may carry "\ud800"; the UTF-8 log file cannot encode one);
# the backslash too, so an escape in the log is always ours.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\\]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: Any, limit: int = MAX_VALUE) -> str:
    """`value` as one safe piece of a log line: no control character, at most ~`limit` characters."""
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:   # a peer value's str() must not break the log line
        text = f"<{type(value).__name__}>"
    cut = len(text) > limit
    text = _UNSAFE.sub(_escape, text[:limit])
    return text + f"...({len(value) if isinstance(value, str) else 'more'} chars)" if cut else text


_FIELD_BREAKERS = re.compile(r"[\s=\"]")


def field(value: Any, limit: int = MAX_VALUE) -> str:
    """`value` as the value of one `key=value` field: clean(), and quoted when it holds a space,
    `=` or a quote, so that `op=status uid=0 result=ok` from a peer stays inside its own field."""
    text = clean(value, limit)
    if text and not _FIELD_BREAKERS.search(text):
        return text
    return '"' + text.replace('"', '\\"') + '"'


class SafeLines(logging.Filter):
    """Escapes control characters in every formatted message (a traceback, added later, stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:   # a bad format: let logging report it as usual
            return True
        if len(message) > MAX_MESSAGE or _UNSAFE.search(message.replace("\\", "")):
            record.msg = clean(message, MAX_MESSAGE)
            record.args = ()
        return True
