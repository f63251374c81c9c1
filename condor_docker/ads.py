"""Reading HTCondor ads (`.job.ad`, `.machine.ad`, hook stdin) with the real ClassAd library.

The files are in HTCondor's "old" format: one `Attr = Value` line per attribute.
Values are evaluated by classad2, so an attribute holding an expression
(`RequestMemory = ifthenelse(...)`) yields its value, as HTCondor would see it.
"""
from __future__ import annotations

import os
import re
from typing import Any

import classad2

from .failures import Code, Failure

_MISSING = object()


_ATTR_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=")


def parse_ad(text: str, what: str = "ad", check_complete: bool = True) -> classad2.ClassAd:
    """Parse one ad from `Attr = Value` lines; an unparsable ad is a HOLD naming `what`.

    classad2 stops quietly at the first line it cannot parse (an unterminated
    string drops that attribute and every one after it), which would make a
    cut ad look like another job.  So every `Attr =` line must be in the result:
    the first one missing is named, with its line number.  `check_complete=False`
    skips that (it parses each line again: ~15 ms for a job ad) for a reader that
    only acts on attributes it finds and does nothing when they are missing.
    """
    if not isinstance(text, str):
        raise Failure(Code.BAD_JOB_AD, f"the {what} must be text")
    try:
        ads = list(classad2.parseAds(text))
    except Exception as err:  # classad2 raises ClassAdException / ValueError
        raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: {err}") from err
    if len(ads) > 1:
        raise Failure(Code.BAD_JOB_AD, f"the {what} holds {len(ads)} ads, not one")
    ad = ads[0] if ads else classad2.ClassAd()
    if check_complete:
        _check_complete(ad, text, what)
    return ad


def _check_complete(ad: classad2.ClassAd, text: str, what: str) -> None:
    """Every `Attr = Value` line of `text` must be what `ad` holds for Attr (its last line wins).

    Each value is parsed by classad2 on its own, so the line that stopped the
    whole parse is named; a later duplicate of a dropped name cannot hide it.
    """
    last: dict[str, tuple[int, str, classad2.ExprTree]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("[", "]"):
            continue
        match = _ATTR_LINE.match(line)
        if match is None:
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: line {number} is not `Attr = Value`: "
                                           f"{stripped[:80]!r}")
        name = match.group(1)
        try:
            value = classad2.ExprTree(line[match.end():].strip())
        except Exception:
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} "
                                           "is not a ClassAd value (an unterminated string?)") from None
        last[name.lower()] = (number, name, value)
    for number, name, value in last.values():
        held = ad.lookup(name) if name in ad else None
        if held is None or str(held) != str(value):
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: {name} on line {number} was not read "
                                           "(the ad is cut or malformed before it)")


def read_ad_file(path: str | os.PathLike, what: str | None = None) -> classad2.ClassAd:
    """Read an ad file; a missing file is a HOLD that names the path."""
    what = what or os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError as err:
        raise Failure(Code.BAD_JOB_AD, f"cannot read {what}: {err.strerror}") from err
    return parse_ad(text, what)


def evaluate(ad: classad2.ClassAd, attr: str) -> Any:
    """The attribute's value, or None when it is missing, undefined or an error."""
    if attr not in ad:
        return None
    try:
        value = ad.eval(attr)
    except Exception:
        return None
    if value is classad2.Value.Undefined or value is classad2.Value.Error:
        return None
    return value


def get_str(ad: classad2.ClassAd, attr: str, default: str | None = None) -> str | None:
    value = evaluate(ad, attr)
    if value is None:
        return default
    if not isinstance(value, str):
        raise Failure(Code.BAD_JOB_AD, f"job attribute {attr} must be a string, not {value!r}")
    return value


def get_int(ad: classad2.ClassAd, attr: str, default: int | None = None) -> int | None:
    value = evaluate(ad, attr)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Failure(Code.BAD_JOB_AD, f"attribute {attr} must be a number, not {value!r}")
    return int(value)


def get_bool(ad: classad2.ClassAd, attr: str, default: bool = False) -> bool:
    value = evaluate(ad, attr)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Failure(Code.BAD_JOB_AD, f"attribute {attr} must be a boolean, not {value!r}")


def format_value(value: Any) -> str:
    """A Python value as ClassAd text, for hook output (`Attr = <this>`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return classad2.quote(value)
    if isinstance(value, (list, tuple)):
        return "{ " + ", ".join(format_value(v) for v in value) + " }"
    raise TypeError(f"cannot write {value!r} as a ClassAd value")


def format_ad_lines(attrs: dict[str, Any]) -> str:
    """`Attr = Value` lines, as a startd cron job or a hook prints them."""
    return "".join(f"{name} = {format_value(value)}\n" for name, value in attrs.items())
