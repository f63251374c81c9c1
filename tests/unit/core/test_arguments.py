"""Unit tests for condor_docker.core.arguments: HTCondor's argument/environment syntaxes.

Expected values were worked out by hand from the rules in HTCondor's
condor_arglist.cpp, env.cpp and submit_utils.cpp, and from the examples in
the condor_submit manual.
"""
from __future__ import annotations

import random

import pytest

from condor_docker.core.arguments import (
    ArgumentSyntaxError,
    args_to_v2_raw,
    parse_args_v1,
    parse_args_v2,
    parse_env_v1,
    parse_env_v2,
    submit_arguments_to_ad,
    submit_environment_to_ad,
)

# --- parse_args_v2 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("   ", []),
        ("\t\n\r ", []),
        ("a", ["a"]),
        ("a b c", ["a", "b", "c"]),
        ("  a   b  ", ["a", "b"]),
        ("a\tb\nc\rd", ["a", "b", "c", "d"]),
        ("a\vb\fc", ["a\vb\fc"]),  # only space/tab/newline/CR separate
        ("'a b'", ["a b"]),
        ("a'b c'd", ["ab cd"]),
        ("''''", ["'"]),
        ("''", [""]),
        ("'' ''", ["", ""]),
        ("a '' b", ["a", "", "b"]),
        ("x''", ["x"]),
        ("''x", ["x"]),
        ("'it''s'", ["it's"]),
        ("'''a'''", ["'a'"]),
        ("'a''''b'", ["a''b"]),
        ("'' ' '", ["", " "]),
        ("'a\tb'", ["a\tb"]),
        ("'a\nb' c", ["a\nb", "c"]),
        ("'a'  'b'", ["a", "b"]),
        ("'a''b'", ["a'b"]),
        ("'a''' b", ["a'", "b"]),
        ('"a b"', ['"a', 'b"']),
        ('say "hi"', ["say", '"hi"']),
        ("back\\slash 'c:\\dir'", ["back\\slash", "c:\\dir"]),
        ("-c echo' 'oomtest", ["-c", "echo oomtest"]),
        ("-c echo' 'hello", ["-c", "echo hello"]),
        ("--opt=x' 'y z", ["--opt=x y", "z"]),
        ("ünï ' cödé'", ["ünï", " cödé"]),
    ],
)
def test_parse_args_v2(raw: str, expected: list[str]) -> None:
    assert parse_args_v2(raw) == expected


@pytest.mark.parametrize(
    "raw", ["'", "'abc", "a 'b", "'''", "a'b''", "ok 'it''s", "x ' "]
)
def test_parse_args_v2_unterminated_quote(raw: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match="unterminated single quote"):
        parse_args_v2(raw)


def test_parse_args_v2_error_names_the_fix() -> None:
    with pytest.raises(ArgumentSyntaxError) as info:
        parse_args_v2("a 'b c")
    message = str(info.value)
    assert "in arguments" in message
    assert "'b c" in message or "\"a 'b c\"" in message
    assert "close the quote" in message and "''" in message


# --- parse_args_v1 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", []),
        ("   ", []),
        ("a b", ["a", "b"]),
        ("  a\t\tb \n c\r", ["a", "b", "c"]),
        ("one \"two\" 'three'", ["one", '"two"', "'three'"]),
        ('"a b"', ['"a', 'b"']),
        ("'a b'", ["'a", "b'"]),
        ("a\\ b", ["a\\", "b"]),
        ('a\\"b', ['a\\"b']),
        ("C:\\dir\\x.exe", ["C:\\dir\\x.exe"]),
        ("'' x", ["''", "x"]),
        ("a\vb", ["a\vb"]),
        ("$HOME ${X} `cmd`", ["$HOME", "${X}", "`cmd`"]),
    ],
)
def test_parse_args_v1_unix(raw: str, expected: list[str]) -> None:
    assert parse_args_v1(raw) == expected


# --- args_to_v2_raw ----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a b"),
        (["-c", "echo hello"], "-c echo' 'hello"),
        ([""], "''"),
        (["", ""], "'' ''"),
        (["a", "", "b"], "a '' b"),
        (["'"], "''''"),
        (["''"], "''''''"),
        (["it's"], "it''''s"),
        (["x' y"], "x''' 'y"),
        (["a b c"], "a' 'b' 'c"),
        (["a  b"], "a'  'b"),
        ([" lead"], "' 'lead"),
        (["trail "], "trail' '"),
        (["a\tb"], "a'\t'b"),
        (["tab\t", "nl\n"], "tab'\t' nl'\n'"),
        (['"quoted"'], '"quoted"'),
        (["back\\slash"], "back\\slash"),
        (["spacey 'quoted' argument"], "spacey' '''quoted''' 'argument"),
    ],
)
def test_args_to_v2_raw_matches_htcondor_join_args(argv: list[str], expected: str) -> None:
    assert args_to_v2_raw(argv) == expected
    assert parse_args_v2(expected) == argv


TRICKY_ARGVS = [
    [],
    [""],
    ["", "", ""],
    ["'"],
    ["''", "'''"],
    [" "],
    ["\t\n\r"],
    ["a'b c'd"],
    ["'leading", "trailing'", "mid'dle"],
    ['"', '""', '"a b"'],
    ["\\", "\\'", "'\\"],
    ["x=1 y=2", "--flag='v'"],
    ["\v\f", "ünï cödé"],
    ["-c", "echo 'hi there' \"$USER\"; exit 3"],
]


@pytest.mark.parametrize("argv", TRICKY_ARGVS)
def test_args_round_trip_tricky(argv: list[str]) -> None:
    assert parse_args_v2(args_to_v2_raw(argv)) == argv


def _random_argvs(count: int, seed: int) -> list[list[str]]:
    """Deterministic random argv lists over the characters that matter to quoting."""
    rng = random.Random(seed)
    alphabet = " \t\n\r'\"\\=$ab\v"
    return [
        ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(0, 5))]
        for _ in range(count)
    ]


def test_args_round_trip_generated() -> None:
    for argv in _random_argvs(3000, seed=20240601):
        raw = args_to_v2_raw(argv)
        assert parse_args_v2(raw) == argv, (argv, raw)
        assert "''''''''" not in raw.replace("''''''", "")  # quoted runs are merged, not reopened


# --- submit_arguments_to_ad ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # new syntax (manual examples), written back in canonical V2 raw form
        ('"3 simple arguments"', ("Arguments", "3 simple arguments")),
        ("\"one 'two with spaces' 3\"", ("Arguments", "one two' 'with' 'spaces 3")),
        (
            "\"one \"\"two\"\" 'spacey ''quoted'' argument'\"",
            ("Arguments", "one \"two\" spacey' '''quoted''' 'argument"),
        ),
        ("\"-c 'echo hello'\"", ("Arguments", "-c echo' 'hello")),
        ("\"-c 'echo oomtest'\"", ("Arguments", "-c echo' 'oomtest")),
        ('""', ("Arguments", "")),
        ('"a""b"', ("Arguments", 'a"b')),
        ('""""', ("Arguments", '"')),
        ("\"''\"", ("Arguments", "''")),
        ("\"a  ''  b\"", ("Arguments", "a '' b")),
        ('"  a   b  "', ("Arguments", "a b")),
        ('  "a b"  ', ("Arguments", "a b")),
        ('"a b"\t', ("Arguments", "a b")),
        ('"C:\\dir\\x"', ("Arguments", "C:\\dir\\x")),
        # old syntax: \" is a literal quote, words re-joined by single spaces
        ("one \\\"two\\\" 'three'", ("Args", "one \"two\" 'three'")),
        ("a   b\tc", ("Args", "a b c")),
        ("  a b  ", ("Args", "a b")),
        ("C:\\path\\x", ("Args", "C:\\path\\x")),
        ('a\\\\"b', ("Args", 'a\\"b')),
        ('\\"quoted\\"', ("Args", '"quoted"')),
        ('x=\\"a b\\"', ("Args", 'x="a b"')),
        ("a\\b \\", ("Args", "a\\b \\")),
        ("'x y'", ("Args", "'x y'")),
        # empty value: condor_submit treats it as unset and writes empty V2
        ("", ("Arguments", "")),
        ("   ", ("Arguments", "")),
    ],
)
def test_submit_arguments_to_ad(value: str, expected: tuple[str, str]) -> None:
    assert submit_arguments_to_ad(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"abc', "unterminated double quote"),
        ('"a ""b', "unterminated double quote"),
        ('"a"b"', "after the closing double quote"),
        ('"a" b', "after the closing double quote"),
        ('a "b"', "unescaped double quote"),
        ('a"', "unescaped double quote"),
        ('a\\"b"', "unescaped double quote"),
        ("\"it's\"", "unterminated single quote"),
    ],
)
def test_submit_arguments_to_ad_errors(value: str, problem: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match=problem):
        submit_arguments_to_ad(value)


def test_submit_arguments_error_suggests_doubling() -> None:
    with pytest.raises(ArgumentSyntaxError, match='write "" for a literal double quote'):
        submit_arguments_to_ad('"say "hi""')


# --- parse_env_v2 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", {}),
        ("   ", {}),
        ("A=1 B=2", {"A": "1", "B": "2"}),
        ("  A=1 \t B=2\n", {"A": "1", "B": "2"}),
        (
            "one=1 two=\"2\" three='spacey ''quoted'' value'",
            {"one": "1", "two": '"2"', "three": "spacey 'quoted' value"},
        ),
        ("URL=a=b=c", {"URL": "a=b=c"}),
        ("E=", {"E": ""}),
        ("E=''", {"E": ""}),
        ("'MSG=hello world' X=y", {"MSG": "hello world", "X": "y"}),
        ("MSG='x = y'", {"MSG": "x = y"}),
        ("OPTS=-Xmx1g' '-Dk=v", {"OPTS": "-Xmx1g -Dk=v"}),
        ("Q='it''s'", {"Q": "it's"}),
        ("A=1 A=2", {"A": "2"}),
        ("P=a;b|c", {"P": "a;b|c"}),
        ("B=x\\y", {"B": "x\\y"}),
        ("X=$$(Y)", {"X": "$$(Y)"}),
    ],
)
def test_parse_env_v2(raw: str, expected: dict[str, str]) -> None:
    assert parse_env_v2(raw) == expected


def test_parse_env_v2_keeps_first_appearance_order() -> None:
    assert list(parse_env_v2("B=1 A=2 C=3 B=4").items()) == [("B", "4"), ("A", "2"), ("C", "3")]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("NOEQ", "missing '='"),
        ("A=1 NOEQ", "missing '='"),
        ("=val", "missing variable name"),
        ("''", "empty environment entry"),
        ("A=1 '' B=2", "empty environment entry"),
        ("A='unterminated", "unterminated single quote in environment"),
        ("$$(FOO)", "unexpanded"),
    ],
)
def test_parse_env_v2_errors(raw: str, problem: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match=problem):
        parse_env_v2(raw)


# --- parse_env_v1 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "delimiter", "expected"),
    [
        ("", ";", {}),
        ("A=1;B=2", ";", {"A": "1", "B": "2"}),
        (
            "one=1;two=2;three=\"quotes have no 'special' meaning\"",
            ";",
            {"one": "1", "two": "2", "three": "\"quotes have no 'special' meaning\""},
        ),
        ("A=1; B=2", ";", {"A": "1", "B": "2"}),  # leading whitespace dropped
        ("A=1 ;B=2 ", ";", {"A": "1 ", "B": "2 "}),  # trailing whitespace kept
        ("  A=1", ";", {"A": "1"}),
        ("A=1;;B=2;", ";", {"A": "1", "B": "2"}),  # empty entries skipped
        ("A=1;  ;B=2", ";", {"A": "1", "B": "2"}),
        ("A=1\nB=2", ";", {"A": "1", "B": "2"}),  # newline also separates
        (";A=1;B=2", ";", {"A": "1", "B": "2"}),  # leading delimiter skipped
        ("|A=1;x|B=2", ";", {"A": "1;x", "B": "2"}),  # leading char picks the delimiter
        ("-X=1-Y=2", ";", {"X": "1", "Y": "2"}),
        ("A=1|B=2", "|", {"A": "1", "B": "2"}),
        ("A=1|B=2", ";", {"A": "1|B=2"}),
        ("PATH=/bin:/usr/bin;MSG=a b", ";", {"PATH": "/bin:/usr/bin", "MSG": "a b"}),
        ("A=x=y", ";", {"A": "x=y"}),
        ("A='q';B=\"r\"", ";", {"A": "'q'", "B": '"r"'}),
        ("A=a\\b;B=c\\;d=e", ";", {"A": "a\\b", "B": "c\\", "d": "e"}),  # no escaping
        ("A=1;A=2", ";", {"A": "2"}),
        ("E=", ";", {"E": ""}),
    ],
)
def test_parse_env_v1(raw: str, delimiter: str, expected: dict[str, str]) -> None:
    assert parse_env_v1(raw, delimiter) == expected


def test_parse_env_v1_default_delimiter_is_semicolon() -> None:
    assert parse_env_v1("A=1;B=2") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("A=1;NOEQ", "missing '='"),
        ("=x", "missing variable name"),
        ("A=1; =x", "missing variable name"),
        ("A=1;$$(Y)", "unexpanded"),
    ],
)
def test_parse_env_v1_errors(raw: str, problem: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match=problem):
        parse_env_v1(raw)


@pytest.mark.parametrize("delimiter", ["", ";;"])
def test_parse_env_v1_rejects_bad_delimiter(delimiter: str) -> None:
    with pytest.raises(ValueError, match="one character"):
        parse_env_v1("A=1", delimiter)


# --- submit_environment_to_ad ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "command", "expected"),
    [
        (
            "\"one=1 two=\"\"2\"\" three='spacey ''quoted'' value'\"",
            "environment",
            ("Environment", "one=1 three=spacey' '''quoted''' 'value two=\"2\""),
        ),
        (
            "one=1;two=2;three=\"quotes have no 'special' meaning\"",
            "environment",
            ("Environment", "one=1 three=\"quotes' 'have' 'no' '''special''' 'meaning\" two=2"),
        ),
        ('"B=1 A=2"', "environment", ("Environment", "A=2 B=1")),
        ('"A=1 A=2"', "environment", ("Environment", "A=2")),
        ("\"A='x y'\"", "environment", ("Environment", "A=x' 'y")),
        ('"URL=a=b"', "environment", ("Environment", "URL=a=b")),
        ('  "A=1"  ', "environment", ("Environment", "A=1")),
        ('""', "environment", ("Environment", "")),
        ("", "environment", ("Environment", "")),
        ("B=2;A=1", "environment", ("Environment", "A=1 B=2")),
        ("-X=1", "environment", ("Environment", "X=1")),
        ("|A=1;2|B=3", "environment", ("Environment", "A=1;2 B=3")),
        ('"$$(Y) X=1"', "environment", ("Environment", "$$(Y) X=1")),
        ("A=1;$$(Y)", "environment", ("Environment", "$$(Y) A=1")),
        # the `env` command with the old syntax is the one way to get `Env`
        ("B=2;A=1", "env", ("Env", "A=1;B=2")),
        ("A=1 ; B=x y", "ENV", ("Env", "A=1 ;B=x y")),
        ("A=1;$$(Y)", "env", ("Env", "$$(Y);A=1")),
        (";", "env", ("Env", "")),
        ('"B=1 A=2"', "env", ("Environment", "A=2 B=1")),
        ("", "env", ("Environment", "")),
    ],
)
def test_submit_environment_to_ad(value: str, command: str, expected: tuple[str, str]) -> None:
    assert submit_environment_to_ad(value, command) == expected


def test_submit_environment_default_command_is_environment() -> None:
    assert submit_environment_to_ad("A=1;B=2") == ("Environment", "A=1 B=2")


def test_submit_environment_v2_output_reads_back() -> None:
    value = "\"one=1 two=\"\"2\"\" three='spacey ''quoted'' value' e= eq=a=b\""
    attr, raw = submit_environment_to_ad(value)
    assert attr == "Environment"
    assert parse_env_v2(raw) == {
        "e": "",
        "eq": "a=b",
        "one": "1",
        "three": "spacey 'quoted' value",
        "two": '"2"',
    }


@pytest.mark.parametrize(
    ("value", "command", "problem"),
    [
        ('"A=1', "environment", "unterminated double quote"),
        ('"A=1" junk', "environment", "after the closing double quote"),
        ("NOEQ", "environment", "missing '='"),
        ('"A=1 NOEQ"', "environment", "missing '='"),
        ("\"''\"", "environment", "empty environment entry"),
        ('"=x"', "environment", "missing variable name"),
        ("\"A='x\"", "environment", "unterminated single quote"),
        ("|A=1;2|B=3", "env", "cannot be written in the old"),
    ],
)
def test_submit_environment_to_ad_errors(value: str, command: str, problem: str) -> None:
    with pytest.raises(ArgumentSyntaxError, match=problem):
        submit_environment_to_ad(value, command)


def test_submit_environment_rejects_other_commands() -> None:
    with pytest.raises(ValueError, match="'environment' or 'env'") as info:
        submit_environment_to_ad("A=1", "arguments")
    assert not isinstance(info.value, ArgumentSyntaxError)


def test_argument_syntax_error_is_a_value_error() -> None:
    assert issubclass(ArgumentSyntaxError, ValueError)
