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

# What may reach the ClassAd library.  classad2 parses an operator chain of any
# length, but unparsing it (str(), printOld()) recurses once per term in C++ and
# overflows a thread's stack near 50,000 terms, killing the process.  No ad that
# HTCondor writes comes near these figures: a long Requirements has ~100 terms.
MAX_OPERATORS_PER_VALUE = 4096
MAX_NESTING_PER_VALUE = 256
_SHORT_VALUE = 2 * MAX_OPERATORS_PER_VALUE     # a value this short cannot hold too many
# Attribute selection (`a.b.b...`) and subscripts (`a[0][0]...`) chain like
# operators: a chain of either crashes the library too (in lookup, not only str()).
_OPERATOR = re.compile(r"&&|\|\||=\?=|=!=|[<>=!]=|<<|>>>|>>|[-+*/%<>!~^&|?:]"
                       r"|\.(?!\d)|[\w\])\"']\s*\[")
_NESTING = re.compile(r"[(\[{]|[)\]}]")
# `is` / `isnt` are operators too; a single-quoted attribute name ('a"b') is a token of its own.
_KEYWORD_OPERATOR = re.compile(r"(?<![\w'])(?:is|isnt)(?![\w'])", re.IGNORECASE)
# strings and quoted names, whichever opens first (a quote of one kind inside the other is text)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"?' + r"|'(?:[^'\\]|\\.)*'?", re.DOTALL)
# The backstop that needs no tokenizer: a value longer than this must be one plain string
# literal (no quote or backslash-quote inside, which both readings agree on); any other
# construct that long is refused, whatever it hides.  Depth and operators are then bounded
# by the length, far below what crashes the library (~30,000 terms are unparsed safely).
MAX_EXPRESSION_CHARS = 2 * _SHORT_VALUE
_PLAIN_STRING = re.compile(r'"[^"]*"', re.DOTALL)


_NOT_TEXT = re.compile("[\ud800-\udfff]")


def parse_ad(text: str, what: str = "ad", check_complete: bool = True) -> classad2.ClassAd:
    """Parse one ad from `Attr = Value` lines; an unparsable ad is a HOLD naming `what`.

    Every value is first bounded (see MAX_OPERATORS_PER_VALUE): a job writes its
    own `.job.ad`, and one line must not be able to crash the agent or a hook.
    classad2 stops quietly at the first line it cannot parse (an unterminated
    string drops that attribute and every one after it), which would make a
    cut ad look like another job.  So every `Attr =` line must be in the result:
    the first one missing is named, with its line number.  `check_complete=False`
    skips that for a reader that only acts on attributes it finds.
    """
    if not isinstance(text, str):
        raise Failure(Code.BAD_JOB_AD, f"the {what} must be text")
    lines = _attribute_lines(text, what, strict=check_complete)
    _check_growth(lines, what)
    if not check_complete:
        # classad2 gets only the lines checked above: a line skipped here (`/* x */ [`)
        # could switch it to new syntax and join the checked lines into one expression
        text = _checked_text(text)
    try:
        ads = list(classad2.parseAds(text))
    except Exception as err:  # classad2 raises ClassAdException / ValueError
        raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: {err}") from err
    if len(ads) > 1:
        raise Failure(Code.BAD_JOB_AD, f"the {what} holds {len(ads)} ads, not one")
    ad = ads[0] if ads else classad2.ClassAd()
    if check_complete:
        _check_complete(ad, lines, what)
    return ad


def lines_named(text: str, names: frozenset[str]) -> str:
    """Only the `Attr = Value` lines of `text` whose attribute is one of `names` (lower case).

    For a reader that must decide one thing about an ad the full reader refused
    (PREPARE_JOB: is this job ours at all?): those few lines parse on their own.
    """
    kept = [line for line in text.split("\n")
            if (match := _ATTR_LINE.match(line)) is not None and match.group(1).lower() in names]
    return "\n".join(kept) + "\n"


def _checked_text(text: str) -> str:
    """The ad's lines up to the first one that is not `Attr = Value` (a blank or comment line)."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "]" and _ATTR_LINE.match(line) is None:
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def _attribute_lines(text: str, what: str, strict: bool) -> list[tuple[int, str, str]]:
    """(line number, name, value text) of each `Attr = Value` line, every value bounded.

    `strict`: a line of another shape is a HOLD; otherwise it is skipped here
    (classad2 will stop there, and the caller acts only on what it finds).
    """
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("["):
            # new ClassAd syntax joins lines into one expression, past every per-line bound
            # below (a deep chain of short `Name == 1 +` lines crashed the reader)
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: line {number} opens an ad in new ClassAd "
                                           "syntax ([ ... ]); only the `Attr = Value` lines HTCondor writes are read")
        if not stripped or stripped.startswith("#") or stripped == "]":
            continue
        match = _ATTR_LINE.match(line)
        if match is None:
            if not strict:
                continue
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: line {number} is not `Attr = Value`: "
                                           f"{stripped[:80]!r}")
        value = line[match.end():]
        if _NOT_TEXT.search(value):   # bytes stdin could not decode, kept as lone surrogates
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {match.group(1)} on line "
                                           f"{number} is not UTF-8 text")
        if len(value) > _SHORT_VALUE:
            _check_value_bounds(value, match.group(1), number, what)
        found.append((number, match.group(1), value))
    return found


def _check_value_bounds(value: str, name: str, number: int, what: str) -> None:
    """Refuse a value with more operators or deeper nesting than any real ad holds."""
    stripped = value.strip()
    if len(stripped) > MAX_EXPRESSION_CHARS and not (
            _PLAIN_STRING.fullmatch(stripped) and not stripped.endswith('\\"')):
        raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} is "
                                       f"{len(stripped)} characters long and not one plain string; no job ad "
                                       f"written by HTCondor has an expression over {MAX_EXPRESSION_CHARS}")
    code = _QUOTED.sub(lambda m: '""' if m.group(0)[0] == '"' else "'n'", value)
    operators = len(_OPERATOR.findall(code)) + len(_KEYWORD_OPERATOR.findall(code))
    if operators > MAX_OPERATORS_PER_VALUE:
        raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} has "
                                       f"{operators} operators, more than the {MAX_OPERATORS_PER_VALUE} "
                                       "allowed (no job ad written by HTCondor has such a value)")
    depth = deepest = 0
    for bracket in _NESTING.findall(code):
        depth = depth + 1 if bracket in "([{" else depth - 1
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING_PER_VALUE:
        raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} nests "
                                       f"{deepest} deep, more than the {MAX_NESTING_PER_VALUE} allowed")


MAX_EVALUATED_CHARS = 16 * 1024 * 1024   # what one value may grow to when evaluated (ads are at most 4 MB)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_REFERENCE = re.compile(r"'((?:[^'\\]|\\.)*)'|(?<![\w.])(?:(?:MY|TARGET)\.)?([A-Za-z_]\w*)", re.I)
# functions whose result can be many times their arguments: a substitute of backreferences, a
# width, a separator put between every piece of a split, a string evaluated as an expression
_AMPLIFIERS = frozenset(("regexps", "replace", "replaceall", "sprintf", "join", "split", "splitusername",
                         "splitslotname", "eval"))
_CONSTANTS = frozenset(("true", "false", "undefined", "error", "is", "isnt"))


def _check_growth(lines: list[tuple[int, str, str]], what: str) -> None:
    """Refuse an ad whose values could grow past MAX_EVALUATED_CHARS when evaluated.

    Each line passes the per-value bounds, yet `B1 = strcat(B0, B0, B0, B0)`, then B2
    from B1, ... makes a string four times bigger per line: 4 GB from a 1 MB B0 in six
    short lines, and classad2 aborts the process on the failed allocation (seen: the
    root agent and both hooks died of SIGABRT).  An upper bound of each value's size is
    cheap: its own text plus each reference's bound, and the square of that where an
    amplifying function may multiply its arguments (`join(B0, split(B0))` is quadratic;
    `eval` of a string counts the names inside it).  A nested ad whose attributes are
    expressions (`[a = "..."; b = strcat(a, a); ...].b`) hides its names from this count:
    HTCondor writes only literal nested ads, so such a value is refused.  The bound
    over-counts, never under.
    """
    values = {name.lower(): (number, name, value) for number, name, value in lines}
    refs = {}
    for key, (number, name, value) in values.items():
        refs[key] = _references(value, values)
        if refs[key][2]:
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} holds "
                                           "a nested ad with expressions (HTCondor writes only literal ones)")
    bounds: dict[str, int] = {}
    for key in values:
        if _bound(key, values, refs, bounds, set()) > MAX_EVALUATED_CHARS:
            number, name, _value = values[key]
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} can "
                                           f"grow past {MAX_EVALUATED_CHARS // (1024 * 1024)} MB when evaluated "
                                           "(its references copy other values over and over)")


def _references(value: str, values: dict[str, tuple[int, str, str]]) -> tuple[list[str], bool, bool]:
    """(the attributes of this ad that `value` names, each occurrence; whether it amplifies;
    whether it holds a nested ad that is not all literals)."""
    code = _STRING.sub('""', value)
    names = [(quoted or bare).lower() for quoted, bare in _REFERENCE.findall(code)]
    amplifies = any(name in _AMPLIFIERS for name in names)
    if "eval" in names:   # what its strings say is an expression too: names, nested ads
        code = value
        names = [(quoted or bare).lower() for quoted, bare in _REFERENCE.findall(code)]
    return [name for name in names if name in values], amplifies, _nested_ad_with_expressions(code)


_NESTED_AD = re.compile(r"(?:^|[^\w\])\s])\s*\[([^\[\]]*)")   # `[` that opens an ad, not a subscript
_LOCAL_VALUE = re.compile(r"=\s*([^;\]]*)")


def _nested_ad_with_expressions(code: str) -> bool:
    """Whether a nested ad in `code` (strings already blanked) names anything: an attribute or a function.

    Operators over literals cannot grow past their text; a name can (it is copied in).
    """
    for match in _NESTED_AD.finditer(code):
        for local in _LOCAL_VALUE.findall(match.group(1)):
            words = [(quoted or bare).lower() for quoted, bare in _REFERENCE.findall(local)]
            if any(word not in _CONSTANTS for word in words):   # a reference, or a function's name
                return True
    return False


def _bound(key: str, values: dict, refs: dict, bounds: dict[str, int], visiting: set[str]) -> int:
    """An upper bound of the evaluated size of attribute `key` (memoized; a cycle evaluates to an error).

    Iterative: a chain of 100,000 references (`Ref0 = Ref1`, ...) must not recurse.
    """
    stack = [(key, 0)]
    while stack:
        name, done = stack.pop()
        if name in bounds:
            continue
        names, amplifies, _nested = refs[name]
        while done < len(names) and (names[done] in bounds or names[done] in visiting):
            done += 1   # each reference is looked at once per attribute: linear in the ad
        if done < len(names):
            visiting.add(name)
            stack.append((name, done + 1))
            stack.append((names[done], 0))
            continue
        total = len(values[name][2])
        for ref in names:
            total += bounds.get(ref, 0)   # not in bounds: a cycle, which evaluates to an error
            if total > MAX_EVALUATED_CHARS:
                break
        if amplifies:
            total = min(total, MAX_EVALUATED_CHARS + 1) ** 2
        visiting.discard(name)
        bounds[name] = min(total, MAX_EVALUATED_CHARS + 1)
    return bounds[key]


def _check_complete(ad: classad2.ClassAd, lines: list[tuple[int, str, str]], what: str) -> None:
    """Every `Attr = Value` line must have been read into `ad`.

    Values are not compared: any second reading (a new-syntax ExprTree, str())
    disagrees with the old format on backslashes, and unparsing is where a deep
    expression crashes.  A name missing from the result marks where classad2
    stopped.  A stop hidden behind a repeated name (the dropped line's name also
    appears before it) is caught by parsing just those repeated lines alone.
    """
    seen: dict[str, int] = {}
    for number, name, _value in lines:
        if name not in ad:
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: {name} on line {number} was not read "
                                           "(the ad is cut or malformed before it)")
        seen[name.lower()] = seen.get(name.lower(), 0) + 1
    for number, name, value in lines:
        if seen[name.lower()] > 1 and name not in _parse_alone(name, value):
            raise Failure(Code.BAD_JOB_AD, f"cannot parse the {what}: the value of {name} on line {number} "
                                           "is not a ClassAd value (an unterminated string?)")


def _parse_alone(name: str, value: str) -> classad2.ClassAd:
    try:
        ads = list(classad2.parseAds(f"{name} ={value}\n"))
    except Exception:
        return classad2.ClassAd()
    return ads[0] if ads else classad2.ClassAd()


def read_ad_file(path: str | os.PathLike, what: str | None = None) -> classad2.ClassAd:
    """Read an ad file; a missing file is a HOLD that names the path."""
    what = what or os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError as err:
        raise Failure(Code.BAD_JOB_AD, f"cannot read {what}: {err.strerror}") from err
    return parse_ad(text, what)


def with_htcondor_functions() -> None:
    """Make HTCondor's own ClassAd functions (StringListMember, stringListSize, ...) evaluable.

    classad2 alone knows only the ClassAd language's functions: an admin's
    `StringListMember(Owner, "alice,bob")` would be ERROR there, which reads as false.
    Importing htcondor2 registers the rest, as every HTCondor daemon has them.  Only
    the agent's side calls this (a hook must not pay for htcondor2 at start).
    """
    import htcondor2  # noqa: F401  (the import registers the functions)


def evaluate_over(expression: str, attributes: tuple[tuple[str, Any], ...]) -> Any:
    """An admin's expression evaluated over `attributes` alone (what the agent vouches for).

    None when it is undefined or an error, so each caller applies HTCondor's default.
    """
    with_htcondor_functions()
    # As HTCondor evaluates these knobs (param_boolean over the ads): the machine is MY, the
    # job is TARGET; the job's one vouched attribute, Owner, is in both so that `Owner`,
    # `MY.Owner` and `TARGET.Owner` all read it, as they would in a match.
    machine, job = classad2.ClassAd(), classad2.ClassAd()
    for name, value in attributes:
        machine[name] = value
        if name == "Owner":
            job[name] = value
    value = classad2.ExprTree(expression).eval(scope=machine, target=job)
    if value is classad2.Value.Undefined or value is classad2.Value.Error:
        return None
    return value


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


def expression_too_big(text: str) -> str | None:
    """Why `text` must not reach the ClassAd library, or None when it may.

    The bound parse_ad puts on every ad value (MAX_OPERATORS_PER_VALUE and the
    rest), for an expression that comes from elsewhere (a submit file's
    `request_memory` or `requirements`): the reason reads on after its name,
    e.g. "has 200001 operators, more than the 4096 allowed (...)".
    """
    if len(text) <= _SHORT_VALUE:
        return None
    prefix = "cannot parse the expression: the value of it on line 0 "
    try:
        _check_value_bounds(text, "it", 0, "expression")
    except Failure as failure:
        return failure.reason[len(prefix):] if failure.reason.startswith(prefix) else failure.reason
    return None
