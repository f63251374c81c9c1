"""Every module, file and test path the docs and the package's own text name exists.

The package moved from flat modules into subpackages (docs/DESIGN-NOTES.md);
this keeps README.md, docs/*.md, tests/*/README.md and the docstrings, comments
and string literals under condor_docker/ honest about it:

- a path `tests/...py` or `condor_docker/...py` names a file in the checkout;
- a subpackage path such as `agent/policy.py` or `agent/policy.check_spec`
  names a module under condor_docker/;
- a bare file name such as `spec.py` is some file's name in the checkout;
- `python -m condor_docker.X` names a module that exists;
- a backticked `module.name` or `side/module.name` of this package names
  something that module defines (`policy.check_spec`, `agent/slots.SlotSource`);
- none of the flat modules that are gone (`slot_source`, `agent_jobs`, ...) is
  cited as a module (`slot_source.py`, `slot_source.SlotSource`, `` `hooks` ``).
  Logger names keep the old spelling on purpose (`condor_docker.agent_jobs`):
  a name right after a dot is an attribute or a logger, not a module, and passes.

Placeholders (`tests/unit/<side>/test_<module>.py`, `*.py`) are skipped.  Only
text is read (no imports), so this takes well under a second.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterable
from functools import cache, lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "condor_docker"
SIDES = ("core", "wire", "host", "engine", "agent", "starter", "admin", "local", "pool")

# flat modules of the old layout whose names no module has now
GONE = ("slot_source", "agent_jobs", "agent_exec", "exec_job", "jobwatch", "jobpolicy", "hooks")

# a name starts after anything but a word character, a dot, a slash or a dash
_START = r"(?<![\w./-])"
FULL_PATH = re.compile(_START + r"((?:tests|condor_docker)/[\w/.<>{}*-]*?\.py)(?![\w])")
SIDE_PATH = re.compile(_START + r"((?:" + "|".join(SIDES) + r")/\w+)(?:\.py\b|\.\w)")
BARE_FILE = re.compile(_START + r"(\w+\.py)\b")
RUN_MODULE = re.compile(r"python3? -m (condor_docker(?:\.\w+)*)")
GONE_MODULE = re.compile(_START + r"(" + "|".join(GONE) + r")(?:\.py\b|\.[A-Za-z_])")
GONE_BACKTICKED = re.compile(r"`(" + "|".join(GONE) + r")`")
# `policy.check_spec`, `agent/slots.SlotSource`, `lifecycle.ContainerRun.stop`
MODULE_ATTR = re.compile(r"`(?:condor_docker/)?((?:(?:" + "|".join(SIDES) + r")/)?\w+)\.([A-Za-z_]\w*)")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return files + sorted((ROOT / "tests").glob("*/README.md"))


def package_lines(path: Path) -> list[tuple[int, str]]:
    """The comments, docstrings and string literals of one source file, line by line."""
    source = path.read_text()
    lines = [(tok.start[0], tok.string)
             for tok in tokenize.generate_tokens(io.StringIO(source).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lines += [(node.lineno + i, line) for i, line in enumerate(node.value.splitlines())]
    return sorted(lines)


def sources() -> list[tuple[str, list[tuple[int, str]]]]:
    found = [(str(p.relative_to(ROOT)), list(enumerate(p.read_text().splitlines(), 1)))
             for p in doc_files()]
    found += [(str(p.relative_to(ROOT)), package_lines(p)) for p in sorted(PACKAGE.rglob("*.py"))]
    return found


@lru_cache(maxsize=1)
def file_names() -> frozenset[str]:
    skip = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache", "build", "dist"}
    names = set()
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not skip.intersection(parts) and not any(part.endswith(".egg-info") for part in parts):
            names.add(path.name)
    return frozenset(names)


@lru_cache(maxsize=1)
def modules() -> dict[str, list[Path]]:
    """Module name -> its files (`status` is both agent/status.py and admin/status.py)."""
    found: dict[str, list[Path]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.stem != "__init__":
            found.setdefault(path.stem, []).append(path)
            found.setdefault(str(path.relative_to(PACKAGE).with_suffix("")), []).append(path)
    return found


@cache
def defines(path: Path, name: str) -> bool:
    pattern = rf"(?m)^\s*(?:async\s+)?(?:def|class)\s+{name}\b|^\s*{name}\s*[:=]"
    return re.search(pattern, path.read_text()) is not None


def placeholder(path: str) -> bool:
    return any(c in path for c in "<>{}*")


def module_exists(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def problems(where: str, lines: str | Iterable[tuple[int, str]]) -> list[str]:
    """What in `lines` (a text, or (line number, line) pairs) names something that is not there."""
    if isinstance(lines, str):
        lines = enumerate(lines.splitlines(), 1)
    found = []
    for lineno, line in lines:
        at = f"{where}:{lineno}"
        for match in FULL_PATH.finditer(line):
            path = match.group(1)
            if not placeholder(path) and not (ROOT / path).is_file():
                found.append(f"{at}: no file {path}")
        for match in SIDE_PATH.finditer(line):
            path = match.group(1)
            if not (PACKAGE / f"{path}.py").is_file():
                found.append(f"{at}: no module condor_docker/{path}.py")
        for match in BARE_FILE.finditer(line):
            if match.group(1) not in file_names():
                found.append(f"{at}: no file named {match.group(1)}")
        for match in RUN_MODULE.finditer(line):
            if not module_exists(match.group(1)):
                found.append(f"{at}: no module {match.group(1)} to run")
        for match in MODULE_ATTR.finditer(line):
            module, name = match.groups()
            files = modules().get(module)   # none: not one of ours (`sys.path`, `memory.peak`)
            if files and name != "py" and not any(defines(f, name) for f in files):
                found.append(f"{at}: {module} defines no {name}")
        for match in (*GONE_MODULE.finditer(line), *GONE_BACKTICKED.finditer(line)):
            found.append(f"{at}: {match.group(1)} is a module of the old flat layout")
    return found


def test_the_checker_sees_what_it_should():
    assert problems("x", "see `tests/unit/test_engine_classify.py`")
    assert problems("x", "defaults from condor_docker/settings.py")
    assert problems("x", "`python -m condor_docker.slot_source SLOT`")
    assert problems("x", "`jobwatch.LauncherWatch` and `agent_jobs._created`")
    assert problems("x", "the machinery in `hooks`")
    assert problems("x", "`engine.py` is its only user")
    assert problems("x", "agent/jobwatch.py")
    assert problems("x", "`policy._open_execute_dir`")
    assert not problems("x", "`python -m condor_docker.agent.slots SLOT`, tests/unit/<side>/test_<m>.py")
    assert not problems("x", 'getLogger("condor_docker.agent_jobs"); settings.slot_source; the hooks.')
    assert not problems("x", "tests/unit/engine/test_classify.py, agent/policy.check_spec, core/settings.py")
    assert not problems("x", "`scratch._open_execute_dir`, `lifecycle.ContainerRun.stop`, `sys.path`, `spec.py`")


def test_every_reference_names_what_exists():
    found = [problem for where, lines in sources() for problem in problems(where, lines)]
    assert found == [], "\n".join(found)
