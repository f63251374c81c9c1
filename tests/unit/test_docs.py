"""The docs show what the tools do: exit codes, hold subcodes, and only commands that exist.

- docs/USERS.md's "Exit codes" table is core/exitcodes.py's, rendered, and it has a
  "what to do" row for every subcode in core/failures.py;
- the install guide's knob table is core/configfiles.py's, and it names every subcode;
- every `condor_docker <command>` the README and docs/ show is a subcommand, every
  `make <target>` a Makefile target, every `scripts/...` a file;
- the agent's own exit constants are the table's numbers.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from condor_docker import cli
from condor_docker.core import exitcodes
from condor_docker.core.failures import Code

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?<![\w/.-])condor_docker ([a-z][a-z-]+)(?![\w-])")
MAKE = re.compile(r"(?<![\w-])make ([a-z][\w-]*)")
SCRIPT = re.compile(r"(?<![\w/.-])(scripts/[\w/.-]+\.sh)")
# English words that follow "condor_docker" in prose, not a command
PROSE = {"agent", "container", "containers", "run", "runs", "and", "is", "does", "has", "never", "itself", "the",
         "pool", "images", "labels", "jobs", "sets", "gives", "forwards", "passes", "image", "in", "on", "for",
         "to", "with", "from", "as", "at", "or", "only", "also", "checks", "writes", "reads", "asks", "entry"}


def test_the_exit_code_table_is_the_module_table():
    assert exitcodes.markdown_table() in (ROOT / "docs" / "USERS.md").read_text()


def test_the_install_guides_knob_table_is_the_generated_one():
    from condor_docker.core.configfiles import knob_table_markdown
    assert knob_table_markdown().strip() in (ROOT / "docs" / "INSTALL-EXECUTE-POINT.md").read_text()


def test_the_install_guide_names_every_subcode():
    text = (ROOT / "docs" / "INSTALL-EXECUTE-POINT.md").read_text()
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \| `[A-Z_]+` \|", text, re.M)}
    assert rows == {int(code) for code in Code}


def test_users_page_says_what_to_do_for_every_subcode():
    text = (ROOT / "docs" / "USERS.md").read_text().split("## My job is held", 1)[1].split("\n## ", 1)[0]
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", text, re.M)}
    assert rows == {int(code) for code in Code}


def _shown(pattern: re.Pattern) -> set[tuple[str, str]]:
    found = set()
    for path in DOCS:
        for block in re.findall(r"`([^`\n]+)`|```[^\n]*\n(.*?)```", path.read_text(), re.S):
            for text in block:
                found |= {(path.name, m.group(1)) for m in pattern.finditer(text)}
    return found


def test_every_condor_docker_command_shown_exists():
    shown = {(doc, word) for doc, word in _shown(COMMAND) if word not in PROSE or word in cli.SUBCOMMANDS}
    missing = sorted((doc, word) for doc, word in shown if word not in cli.SUBCOMMANDS)
    assert not missing, f"docs show condor_docker commands that do not exist: {missing}"


def test_every_make_target_and_script_shown_exists():
    targets = set(re.findall(r"^([\w-]+(?: [\w-]+)*):", (ROOT / "Makefile").read_text(), re.M))
    targets = {t for line in targets for t in line.split()}
    missing = sorted((doc, t) for doc, t in _shown(MAKE) if t not in targets)
    assert not missing, f"docs show make targets the Makefile lacks: {missing}"
    scripts = sorted((doc, s) for doc, s in _shown(SCRIPT) if not (ROOT / s).is_file())
    assert not scripts, f"docs name scripts that do not exist: {scripts}"


@pytest.mark.parametrize("name, code", [("EX_CONFIG", exitcodes.CONFIG), ("EX_SOCKET", exitcodes.SOCKET),
                                        ("EX_CANTCREAT", exitcodes.CANTCREAT)])
def test_the_agents_exit_constants_are_the_tables(name, code):
    from condor_docker.agent import server
    assert getattr(server, name) == code


def _migration_holdcodes():
    import importlib
    import sys
    sys.path.insert(0, str(ROOT / "tests" / "conformance"))
    try:
        return importlib.import_module("holdcodes")
    finally:
        sys.path.remove(str(ROOT / "tests" / "conformance"))


def test_migration_policy_rewrite_of_native_35_catches_every_hold_the_table_maps_from_35():
    """The rewritten `SYSTEM_PERIODIC_RELEASE = HoldReasonCode == 35 ...` must release every hold
    of ours that the hold table says native reports as 35 (and no OOM hold)."""
    import classad2

    holdcodes = _migration_holdcodes()
    text = (ROOT / "docs" / "MIGRATION-FROM-NATIVE.md").read_text()
    block = text[text.index("# condor_docker\n"):]
    rewrite = block.splitlines()[1].split("=", 1)[1].replace("&& NumJobStarts < 3", "").strip()
    from_35 = {hold for row in holdcodes.HOLD_TABLE if any(code == 35 for code, _ in row.native) for hold in row.ours}
    assert (19, int(Code.WRONG_ARCHITECTURE)) in from_35, "native holds an image of another architecture 35"
    for code, subcode in sorted(from_35) + [(3, 102)]:
        ad = classad2.ClassAd({"HoldReasonCode": code, "HoldReasonSubCode": subcode})
        assert classad2.ExprTree(rewrite).eval(ad) is ((code, subcode) != (3, 102)), (code, subcode, rewrite)


def test_migration_knob_rows_say_not_read_only_of_knobs_condor_docker_does_not_read():
    """A knob row that says "not read by condor_docker" names no knob of core/settings.KNOBS, and
    no row calls a knob "plain values here" that is read as an expression."""
    from condor_docker.core.settings import KNOBS

    read = {knob.name: knob.kind for knob in KNOBS}
    for line in (ROOT / "docs" / "MIGRATION-FROM-NATIVE.md").read_text().splitlines():
        names = re.findall(r"`((?:CONDOR_)?DOCKER_[A-Z_<>N]+)`", line.split("|")[1] if line.startswith("|") else "")
        if "not read by condor_docker" in line:
            assert not [n for n in names if n in read], line
        if "plain values" in line:
            assert not [n for n in names if read.get(n, "").endswith("_expr")], line
