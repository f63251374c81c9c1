"""The ad reader: whatever HTCondor's starter writes is read whole and unchanged.

The oracle is classad2 itself: an ad it writes in the starter's old format
(`printOld()`, one `Attr = Value` line each) and reads back to the same ad must
read back to that same ad through `ads.parse_ad`, with the truncation defence
on.  The cases are generated (hypothesis), not written by the reader's hands:
backslashes, quotes, unicode, long values, nested lists and ads, expressions.
"""
from __future__ import annotations

import classad2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from condor_docker.core import ads
from condor_docker.core.failures import Code, Failure

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
# Every character but the line breaks the old format cannot carry (the library itself drops those).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00\x0b\x0c\x1c\x1d\x1e"
                             "\x85\u2028\u2029"), max_size=300)
BACKSLASHY = st.lists(st.sampled_from(['\\', '"', "'", "n", " ", "$", "é", "\\n", "\\\\", "C:\\x"]),
                      max_size=40).map("".join)


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return classad2.quote(value)
    return repr(value)


SCALARS = st.one_of(TEXT, BACKSLASHY, st.integers(-2**62, 2**62), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
LITERALS = SCALARS.map(_literal)
EXPRESSIONS = st.recursive(
    st.one_of(LITERALS, NAMES, st.just("undefined")),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "&&", "||", "==", "=?=", "=!=", "<", ">="]), inner)
          .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.lists(inner, max_size=4).map(lambda xs: "{ " + ", ".join(xs) + " }"),
        st.lists(st.tuples(NAMES, inner), max_size=3)
          .map(lambda kv: "[ " + "; ".join(f"{k} = {v}" for k, v in kv) + " ]"),
        st.tuples(inner, inner, inner).map(lambda t: f"ifThenElse({t[0]}, {t[1]}, {t[2]})"),
        inner.map(lambda x: f"strcat({x}, \"\\\\\")"),
    ),
    max_leaves=12)
ADS = st.dictionaries(NAMES, st.one_of(SCALARS, EXPRESSIONS.map(lambda e: ("expr", e))),
                      max_size=12)


def _build(attrs: dict) -> classad2.ClassAd:
    ad = classad2.ClassAd()
    for name, value in attrs.items():
        if isinstance(value, tuple):
            try:
                ad[name] = classad2.ExprTree(value[1])
            except Exception:
                continue
        else:
            ad[name] = value
    return ad


def _same(left: classad2.ClassAd, right: classad2.ClassAd) -> bool:
    if sorted(k.lower() for k in left.keys()) != sorted(k.lower() for k in right.keys()):
        return False
    return all(str(left.lookup(k)) == str(right.lookup(k)) for k in left.keys())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(ADS)
def test_whatever_classad2_writes_and_reads_back_our_reader_reads_the_same(attrs):
    original = _build(attrs)
    text = original.printOld()
    library = list(classad2.parseAds(text))
    assume(len(library) == 1 and _same(library[0], original))
    try:
        ours = ads.parse_ad(text, "job ad")
    except Failure as refused:   # the one narrowing on purpose: a nested ad that names things (ads._check_growth)
        assert "nested ad with expressions" in refused.reason, (refused.reason, text)
        return
    assert _same(ours, library[0]), text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NAMES, st.one_of(TEXT, BACKSLASHY)), min_size=1, max_size=8))
def test_string_values_come_back_as_the_same_python_strings(pairs):
    original = classad2.ClassAd()
    for name, value in pairs:
        original[name] = value
    text = original.printOld()
    library = list(classad2.parseAds(text))
    assume(len(library) == 1 and _same(library[0], original))
    ours = ads.parse_ad(text, "job ad")
    for name in original.keys():
        assert ours[name] == original[name]


@pytest.mark.parametrize("line, value", [
    ("""Arguments = "-c 'printf %s\\\\n hi'\"""", "-c 'printf %s\\\\n hi'"),
    ('Arguments = "tr \\\\0 x"', "tr \\\\0 x"),
    ('Regex = "^a\\\\.b$"', "^a\\\\.b$"),
    ('WinPath = "C:\\\\Users\\\\job"', "C:\\\\Users\\\\job"),
    ('Quote = "say \\"hi\\""', 'say "hi"'),
    ('Trailing = "ends in \\"', "ends in \\"),
])
def test_a_backslash_in_a_string_is_read_as_htcondor_reads_it(line, value):
    """The 25.0.13 regression: every job with a backslash was held 19/10."""
    ad = ads.parse_ad(f'ClusterId = 1\n{line}\nProcId = 0\n', "job ad")
    assert ad[line.split(" ")[0]] == value
    assert ad["ProcId"] == 0


@pytest.mark.parametrize("text, words", [
    ('A = 1\nB = "unterminated\nC = 2\n', "B on line 2 was not read"),
    ('A = 1\nB = f(1,\nC = 2\n', "B on line 2 was not read"),
    ('A = 1\nB = 2\nA = "cut\n', "the value of A on line 3 is not a ClassAd value"),
    ('A = 1\nnot an attribute\n', "line 2 is not `Attr = Value`"),
])
def test_a_cut_or_malformed_ad_is_still_held_with_the_line_named(text, words):
    with pytest.raises(Failure) as caught:
        ads.parse_ad(text, "job ad")
    assert caught.value.code == Code.BAD_JOB_AD
    assert words in str(caught.value)


@pytest.mark.parametrize("value, words", [
    ("+".join(["1"] * 50_000), "not one plain string"),
    ("&&".join(["x"] * 20_000), "not one plain string"),
    ("+".join(["1"] * 5_000), "operators, more than the 4096 allowed"),
    # an independent review's bypasses of the operator count: single-quoted names hid the chain
    # from the string blanker, and `is` was no operator (both crashed the agent, rc 139)
    ("'a\"b' + " + "+".join(["1"] * 300_000) + " + 'c\"d'", "not one plain string"),
    (" is ".join(["1"] * 300_000), "not one plain string"),
    ("'a\"b' + " + "+".join(["1"] * 4_500) + " + 'c\"d'", "operators, more than the 4096 allowed"),
    ('"' + "x" * 100_000 + '\\" + ' + "+".join(["1"] * 1000) + ' + "', "not one plain string"),
    ("(" * 300 + "1" + ")" * 300 + " " * 9000, "nests 300 deep"),
    ("{" * 300 + "1" + "}" * 300 + " " * 9000, "nests 300 deep"),
])
def test_a_value_that_would_crash_the_classad_library_is_refused_before_it(value, words):
    """50,000 terms parse, but str() of them overflows the C++ stack (rc 139)."""
    for check in (True, False):
        with pytest.raises(Failure) as caught:
            ads.parse_ad(f"ClusterId = 1\nX = {value}\n", "job ad", check_complete=check)
        assert caught.value.code == Code.BAD_JOB_AD
        assert words in str(caught.value)


def test_a_long_string_full_of_operators_is_not_mistaken_for_an_expression():
    args = " ".join(f"--opt-{i}=a+b*c" for i in range(3000))
    ad = ads.parse_ad(f"Arguments = {classad2.quote(args)}\n", "job ad")
    assert ad["Arguments"] == args


@pytest.mark.parametrize("check_complete", [True, False])
def test_bytes_that_are_not_utf8_are_named_by_attribute_and_line(check_complete):
    raw = b'ClusterId = 1\nDockerImage = "a\xff\xfeb"\n'
    text = raw.decode("utf-8", errors="surrogateescape")   # how a hook's stdin hands them over
    with pytest.raises(Failure) as caught:
        ads.parse_ad(text, "job ad", check_complete=check_complete)
    assert caught.value.reason == "cannot parse the job ad: the value of DockerImage on line 2 is not UTF-8 text"


def test_values_that_would_grow_past_the_budget_when_evaluated_are_refused():
    # each line is short and passes the per-value bounds; evaluated, Bomb7 is 4 GB (classad2 aborted)
    chain = ['Bomb0 = "' + "x" * (256 * 1024) + '"'] + [
        f"Bomb{i} = strcat(Bomb{i - 1}, Bomb{i - 1}, Bomb{i - 1}, Bomb{i - 1})" for i in range(1, 8)]
    with pytest.raises(Failure) as caught:
        ads.parse_ad("\n".join(chain) + "\n", "job ad")
    assert caught.value.code is Code.BAD_JOB_AD
    assert "the value of Bomb3 on line 4 can grow past 16 MB when evaluated" in caught.value.reason
    for amplified in ["B = regexps(\".\", Bomb0, \"" + "\\\\0" * 80 + "\")",   # a substitute of backreferences
                      "B = {" + ", ".join(["'Bomb0'"] * 70) + "}"]:             # quoted attribute names count too
        with pytest.raises(Failure, match="can grow past"):
            ads.parse_ad(chain[0] + "\n" + amplified + "\n", "job ad")
    assert ads.parse_ad("\n".join(chain[:3]) + "\n", "job ad").eval("Bomb2") == "x" * (16 * 256 * 1024)


@pytest.mark.parametrize("lines", [
    ['B0 = "' + "x" * (1 << 20) + '"'] + [f'B{i} = eval("strcat(B{i - 1},B{i - 1},B{i - 1},B{i - 1})")'
                                         for i in range(1, 6)],                   # names inside eval's string
    ['B0 = "' + "x" * (1 << 20) + '"', "X = join(B0, split(B0))"],                 # quadratic
    ['X = [a = "' + "x" * 7000 + '"; b = strcat(a,a,a,a); c = strcat(b,b,b,b)].c'],  # a nested ad's own names
    ['X = [a = "' + "x" * 7000 + '"; b = {a,a,a,a}].b'],
    ['X = eval("[a = \\"xx\\"; b = strcat(a,a)].b")'],
    ['X = regexps(".*", "' + "y" * 6000 + '", "' + "\\\\0" * 3000 + '")'],           # no reference at all
])
def test_the_growths_an_independent_review_found_past_the_first_bound_are_refused(lines):
    # each made classad2 abort the process (std::bad_alloc) with the first version of the bound
    with pytest.raises(Failure) as caught:
        ads.parse_ad("\n".join(lines) + "\n", "job ad")
    assert "grow past 16 MB" in caught.value.reason or "nested ad with expressions" in caught.value.reason


def test_literal_nested_ads_lists_and_subscripts_as_htcondor_writes_them_are_read():
    ad = ads.parse_ad('TransferInputFileCounts = [ CEDAR = 2; HTTP = 1 ]\nL = {[a = 1], [b = "x"]}\n'
                      'S = L[0]\nN = [ ]\n', "job ad")
    assert ad.eval("TransferInputFileCounts")["CEDAR"] == 2
