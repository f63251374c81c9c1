"""HTCondor's argument and environment string syntaxes, as Unix HTCondor reads them.

A docker universe must rebuild exactly the argv and environment HTCondor's own
starter would build from `Arguments`/`Args` and `Environment`/`Env`, so these
pure functions follow the rules of HTCondor's condor_arglist.cpp (split_args,
join_args, AppendArgsV1Raw_unix, V2QuotedToV2Raw, V1WackedToV1Raw), env.cpp
(MergeFromV2Raw, MergeFromV1AutoDelim, SetEnvWithErrorMessage) and
submit_utils.cpp (SetArguments, SetEnvironment), reimplemented, not copied.
"""
from __future__ import annotations

import re

_SPLIT_WS = " \t\n\r"  # what split_args() and Unix V1 split on (not \v or \f)
_C_SPACE = " \t\n\v\f\r"  # C isspace(): trimmed from submit values and around "..."
_V1_SPLIT_RE = re.compile("[ \t\n\r]+")
_BARE_DOUBLE_QUOTE_RE = re.compile(r'(?<!\\)"')  # a " with no backslash before it
_NEEDS_QUOTING = frozenset(" \t\n\r'")  # characters join_args() puts in single quotes
# A V1 environment starting with one of these uses it as its delimiter.
_ENV_V1_AUTO_DELIMS = "!#$%&*+,-/:;<>?@^`|~\x1f"
_ENV_V1_DEFAULT_DELIM = ";"


class ArgumentSyntaxError(ValueError):
    """An argument or environment string HTCondor itself would refuse."""


def _show(text: str, limit: int = 120) -> str:
    """User input quoted for an error message, cut short so huge values stay readable."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- arguments -------------------------------------------------------------


def _split_v2(raw: str, what: str) -> list[str]:
    """Split V2 raw syntax (shared by `Arguments` and `Environment`).

    Runs of space/tab/newline/CR separate words; a single-quoted section may
    hold any character, `''` inside it is one literal quote, and quoted and
    bare text that touch form one word, so `a'b c'd` is the single word
    `ab cd` and `''` alone is an empty word. Double quotes and backslashes are
    ordinary characters here.
    """
    words: list[str] = []
    word: list[str] = []
    in_word = False
    pos = 0
    while pos < len(raw):
        char = raw[pos]
        if char == "'":
            start, pos, in_word = pos, pos + 1, True
            while (close := raw.find("'", pos)) >= 0 and raw.startswith("''", close):
                word.append(raw[pos:close] + "'")  # '' inside quotes: one literal quote
                pos = close + 2
            if close < 0:
                raise ArgumentSyntaxError(
                    f"unterminated single quote in {what} {_show(raw)} (the quote opens "
                    f"at {_show(raw[start:], 40)}): close the quote, or write '' inside "
                    "a quoted section for a literal quote"
                )
            word.append(raw[pos:close])
            pos = close + 1
        elif char in _SPLIT_WS:
            pos += 1
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        else:
            word.append(char)
            pos, in_word = pos + 1, True
    if in_word:
        words.append("".join(word))
    return words


def parse_args_v2(raw: str) -> list[str]:
    """Argv from a job ad's `Arguments` attribute (V2 raw, already ClassAd-unquoted).

    `-c echo' 'hello` gives ["-c", "echo hello"]. An unterminated single
    quote is an error, as it is for HTCondor's starter.
    """
    return _split_v2(raw, "arguments")


def parse_args_v1(raw: str) -> list[str]:
    """Argv from a job ad's `Args` attribute (V1 raw), the Unix way.

    On Unix HTCondor splits V1 raw on space/tab/newline/CR and nothing else:
    quotes and backslashes are literal characters (only Windows gives double
    quotes and backslashes a meaning, for CommandLineToArgv). It never fails.
    """
    return [word for word in _V1_SPLIT_RE.split(raw) if word]


def _quote_v2_word(arg: str) -> str:
    """One word in the canonical V2 raw form join_args() writes.

    Only whitespace and single quotes are put inside quotes, each quoted run is
    extended rather than closed and reopened, and an empty word is `''`. Using
    HTCondor's exact form makes our ads byte-identical to condor_submit's.
    """
    if not arg:
        return "''"
    out: list[str] = []
    for char in arg:
        if char in _NEEDS_QUOTING:
            if out and out[-1] == "'":
                out.pop()  # reopen the quoted run that just closed
            else:
                out.append("'")
            out.append("''" if char == "'" else char)
            out.append("'")
        else:
            out.append(char)
    return "".join(out)


def args_to_v2_raw(argv: list[str]) -> str:
    """V2 raw text that parse_args_v2() reads back as exactly `argv`.

    The form is the one HTCondor's join_args() produces, e.g.
    ["-c", "echo hello"] -> `-c echo' 'hello`.
    """
    return " ".join(_quote_v2_word(arg) for arg in argv)


def _is_v2_quoted(value: str) -> bool:
    """HTCondor's test for the "new syntax": first non-space character is `"`."""
    return value.lstrip(_C_SPACE).startswith('"')


def _v2_quoted_to_raw(value: str, what: str) -> str:
    """Remove the outer double quotes of the submit "new syntax"; `""` is one `"`."""
    body = value.lstrip(_C_SPACE)[1:]
    out: list[str] = []
    pos = 0
    while True:
        close = body.find('"', pos)
        if close < 0:
            raise ArgumentSyntaxError(
                f"unterminated double quote in {what} {_show(value)}: end the value "
                'with a closing ", and write "" for each literal double quote inside it'
            )
        out.append(body[pos:close])
        if body.startswith('""', close):
            out.append('"')
            pos = close + 2
            continue
        trailing = body[close + 1 :]
        if trailing.strip(_C_SPACE):
            raise ArgumentSyntaxError(
                f"unexpected text {_show(trailing, 40)} after the closing double quote "
                f"in {what} {_show(value)}: write \"\" for a literal double quote inside "
                "the quoted value"
            )
        return "".join(out)


def _v1_wacked_to_raw(value: str, what: str) -> str:
    r"""Submit "old syntax": `\"` is a literal `"`, a bare `"` is an error, other `\` are literal."""
    bare = _BARE_DOUBLE_QUOTE_RE.search(value)
    if bare:
        raise ArgumentSyntaxError(
            f"unescaped double quote in {what} {_show(value)} at "
            f"{_show(value[bare.start():], 40)}: write \\\" for a literal double quote, "
            "or put the whole value in double quotes (new syntax) and double the inner ones"
        )
    return value.replace('\\"', '"')


def submit_arguments_to_ad(value: str) -> tuple[str, str]:
    """(attribute, raw value) that condor_submit writes for `arguments = value`.

    `value` is the text after `=`, macros already expanded. Like condor_submit:
    an empty value or a double-quoted value gives `Arguments` in canonical V2
    raw form; anything else is the old syntax and gives `Args`, the words
    re-joined by single spaces (so `a   b` becomes `a b`).
    """
    value = value.strip(_C_SPACE)  # the submit-file reader trims values
    if not value:
        return ("Arguments", "")
    if _is_v2_quoted(value):
        argv = parse_args_v2(_v2_quoted_to_raw(value, "arguments"))
        return ("Arguments", args_to_v2_raw(argv))
    return ("Args", " ".join(parse_args_v1(_v1_wacked_to_raw(value, "arguments"))))


# --- environment -----------------------------------------------------------

# Values of None stand for submit-side `$$(...)` entries HTCondor keeps bare.
_EnvTable = dict[str, str | None]


def _add_env_entry(env: _EnvTable, entry: str, raw: str, keep_macros: bool) -> None:
    """Apply one NAME=VALUE entry: split at the first `=`, a later NAME wins."""
    name, equals, val = entry.partition("=")
    if not equals and "$$" in entry:
        if keep_macros:
            env[entry] = None
            return
        raise ArgumentSyntaxError(
            f"environment entry {_show(entry)} in {_show(raw)} is an unexpanded $$() "
            "macro without '=': HTCondor would pass it on as a bare string, which is "
            "not a variable; make sure the schedd expands it, or write NAME=$$(...)"
        )
    if not entry:
        raise ArgumentSyntaxError(
            f"empty environment entry ('') in {_show(raw)}: remove it, or write NAME= "
            "for a variable with an empty value"
        )
    if not equals:
        raise ArgumentSyntaxError(
            f"missing '=' after environment variable {_show(entry)} in {_show(raw)}: "
            "write NAME=VALUE (NAME= for an empty value)"
        )
    if not name:
        raise ArgumentSyntaxError(
            f"missing variable name in environment entry {_show(entry)} in {_show(raw)}: "
            "write NAME=VALUE"
        )
    env[name] = val


def _env_from_v2(raw: str, keep_macros: bool) -> _EnvTable:
    """V2 entries are the words of split_args(), so quoting works as for arguments."""
    env: _EnvTable = {}
    for entry in _split_v2(raw, "environment"):
        _add_env_entry(env, entry, raw, keep_macros)
    return env


def _env_from_v1(raw: str, delimiter: str, keep_macros: bool) -> _EnvTable:
    """V1 entries: a leading delimiter-like character picks the delimiter, newline
    also separates, leading whitespace of an entry is dropped (trailing is kept),
    empty entries are skipped, and nothing can be escaped."""
    if len(delimiter) != 1:
        raise ValueError(f"the V1 environment delimiter must be one character, not {delimiter!r}")
    env: _EnvTable = {}
    if not raw:
        return env
    body = raw
    if raw[0] == delimiter or raw[0] in _ENV_V1_AUTO_DELIMS:
        delimiter, body = raw[0], raw[1:]
    for piece in re.split(f"[{re.escape(delimiter)}\n]", body):
        entry = piece.lstrip(_SPLIT_WS)
        if entry:
            _add_env_entry(env, entry, raw, keep_macros)
    return env


def _plain(env: _EnvTable) -> dict[str, str]:
    """The table without kept `$$` entries (there are none unless keep_macros)."""
    return {name: val for name, val in env.items() if val is not None}


def parse_env_v2(raw: str) -> dict[str, str]:
    """Variables from a job ad's `Environment` attribute (V2 raw).

    Entries are words split exactly like V2 arguments, each NAME=VALUE split
    at the first `=` (so VALUE may contain `=`). A later duplicate NAME wins;
    otherwise order of first appearance is kept. An entry without `=`, with
    an empty NAME, or the empty entry `''` is an error, as in HTCondor; so is
    a bare unexpanded `$$(...)` entry, which HTCondor would pass on verbatim.
    """
    return _plain(_env_from_v2(raw, keep_macros=False))


def parse_env_v1(raw: str, delimiter: str = _ENV_V1_DEFAULT_DELIM) -> dict[str, str]:
    """Variables from a job ad's `Env` attribute (V1 raw).

    `delimiter` is the job's `EnvDelim` (";" on Unix). As in HTCondor, a
    string that starts with one of ``!#$%&*+,-/:;<>?@^`|~`` (or \\x1f) uses
    that character as its delimiter instead. Entries cannot contain the
    delimiter or a newline; leading whitespace of an entry is dropped, trailing
    whitespace is part of the value.
    """
    return _plain(_env_from_v1(raw, delimiter, keep_macros=False))


def _env_to_v2_raw(env: _EnvTable) -> str:
    """condor_submit's `Environment` text: entries sorted by name, joined like args."""
    words = [name if val is None else f"{name}={val}" for name, val in sorted(env.items())]
    return args_to_v2_raw(words)


def _env_to_v1_raw(env: _EnvTable, value: str) -> str:
    """condor_submit's `Env` text: entries sorted by name, joined with `;`."""
    entries = []
    for name, val in sorted(env.items()):
        entry = name if val is None else f"{name}={val}"
        if _ENV_V1_DEFAULT_DELIM in entry or "\n" in entry:
            raise ArgumentSyntaxError(
                f"environment entry {_show(entry)} from {_show(value)} cannot be written "
                "in the old (V1) syntax, which has no way to escape ';' or a newline: "
                "use `environment` with the double-quoted new syntax instead"
            )
        entries.append(entry)
    return _ENV_V1_DEFAULT_DELIM.join(entries)


def submit_environment_to_ad(value: str, command: str = "environment") -> tuple[str, str]:
    """(attribute, raw value) that condor_submit (9.13 and later) writes for
    `environment = value` or `env = value`.

    A double-quoted value is the new syntax; anything else is the old `;`
    syntax. Since HTCondor 9.13 both are written to `Environment` (V2 raw,
    entries sorted by name); only the `env` command with an old-syntax value
    still writes `Env` (condor_submit then also sets `EnvDelim = ";"`).
    Unexpanded `$$(...)` entries without `=` are kept, as condor_submit does.
    """
    if command.lower() not in ("environment", "env"):
        raise ValueError(f"expected the submit command 'environment' or 'env', not {command!r}")
    value = value.strip(_C_SPACE)  # the submit-file reader trims values
    if _is_v2_quoted(value):
        env = _env_from_v2(_v2_quoted_to_raw(value, "environment"), keep_macros=True)
        return ("Environment", _env_to_v2_raw(env))
    env = _env_from_v1(value, _ENV_V1_DEFAULT_DELIM, keep_macros=True)
    if value and command.lower() == "env":
        return ("Env", _env_to_v1_raw(env, value))
    return ("Environment", _env_to_v2_raw(env))
