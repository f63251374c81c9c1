"""The package's layering, checked on its source: imports point one way.

    cli -> {agent, starter, admin, local, pool} -> engine -> host -> core
    wire beside them: stdlib + core only

A side may import the sides below it and itself, never a peer or a side
above; only engine/ imports the Docker SDK (`docker`, `requests`).  Lazy
imports inside functions count too: the rule is about what depends on what,
not about start-up time.  docs/DESIGN-NOTES.md explains each side.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "condor_docker"

# side -> the sides it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "wire": {"core"},
    "host": {"core"},
    "engine": {"host", "core"},
    "agent": {"engine", "host", "core", "wire"},
    "starter": {"host", "core", "wire"},
    "admin": {"engine", "host", "core", "wire"},
    "local": {"engine", "host", "core"},
    "pool": {"core", "wire"},
    "cli": {"agent", "starter", "admin", "local", "pool", "engine", "host", "core", "wire"},
}
ENGINE_ONLY = {"docker", "requests"}
# what a hook must not pay for at start (a hook runs on every job's path)
FORBIDDEN = {"starter": {"htcondor2", "htcondor"}}


def side_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_sides(path: Path) -> list[tuple[int, str]]:
    """(line, what) for every import in the file: a side name, or a top-level third-party module."""
    return imports_of(path.read_text(), ("condor_docker", *path.relative_to(PACKAGE).parts[:-1]))


def imports_of(source: str, package_parts: tuple[str, ...]) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, _classify(alias.name.split("."))))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package_parts[:len(package_parts) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
            else:
                parts = node.module.split(".")
            if parts == ["condor_docker"] or (node.level and len(parts) == 1):
                found += [(node.lineno, _classify(["condor_docker", alias.name])) for alias in node.names]
            else:
                found.append((node.lineno, _classify(parts)))
        elif isinstance(node, ast.Call):
            found += _dynamic_import(node, package_parts)
    return found


def _dynamic_import(call: ast.Call, package_parts: tuple[str, ...]) -> list[tuple[int, str]]:
    """importlib.import_module("x") / __import__("x") / ["-m", "condor_docker.x"]: imports too.

    A non-constant module name is reported as "<dynamic>" (only cli.py may do that: its
    subcommand table names every module as a constant string).
    """
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name not in ("import_module", "__import__") or not call.args:
        return []
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return [(call.lineno, "<dynamic>")]
    module = first.value
    if module.startswith("."):
        level = len(module) - len(module.lstrip("."))
        base = list(package_parts[:len(package_parts) - level + 1])
        return [(call.lineno, _classify(base + [p for p in module.lstrip(".").split(".") if p]))]
    return [(call.lineno, _classify(module.split(".")))]


def module_strings(path: Path) -> list[tuple[int, str]]:
    """Every "condor_docker.x.y" string constant that follows a "-m" in a list or call (a process runs it)."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else node.args if isinstance(node, ast.Call) else []
        for before, after in zip(items, items[1:]):
            if (isinstance(before, ast.Constant) and before.value == "-m" and isinstance(after, ast.Constant)
                    and isinstance(after.value, str) and after.value.startswith("condor_docker")):
                found.append((after.lineno, after.value))
    return found


def _classify(parts: list[str]) -> str:
    if parts[0] != "condor_docker":
        return parts[0]
    return parts[1] if len(parts) > 1 else "condor_docker"


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


SIDES = set(ALLOWED)


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path):
    side = side_of(path)
    if side == "__init__":
        assert path.read_text() == "", "condor_docker/__init__.py stays empty (hook start time)"
        return
    assert side in ALLOWED, f"{path}: not in a declared side ({', '.join(sorted(SIDES))})"
    wrong = [f"line {line}: {what}" for line, what in imported_sides(path)
             if (what in SIDES and what != side and what not in ALLOWED[side])
             or (what in ENGINE_ONLY and side != "engine")
             or what in FORBIDDEN.get(side, ())
             or (what == "<dynamic>" and side != "cli")]
    assert not wrong, f"{path.relative_to(PACKAGE)} ({side}) imports against the layering: {wrong}"


@pytest.mark.parametrize("init", sorted(PACKAGE.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_subpackage_inits_import_nothing(init: Path):
    """An import of condor_docker.starter.job_exit must not pay for its siblings: a docstring at most."""
    body = ast.parse(init.read_text()).body
    assert all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body), init


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_a_process_runs_with_dash_m_exists(path: Path):
    """`python -m condor_docker.x` in the sshd template, rewritten job ads, the slot query: it must exist."""
    for line, module in module_strings(path):
        target = PACKAGE.parent.joinpath(*module.split("."))
        assert target.with_suffix(".py").is_file(), f"{path.name} line {line}: -m {module} names no module"
        assert '__name__ == "__main__"' in target.with_suffix(".py").read_text(), f"-m {module} has no main guard"


def test_the_rule_catches_a_wrong_import():
    """The checker itself: relative, absolute and lazy imports of a higher side, and docker, are found."""
    source = ("from ..engine import client\nimport docker\n"
              "def f():\n    from condor_docker.agent import jobs\n    from .. import local\n"
              "    import importlib\n    importlib.import_module('condor_docker.admin.doctor')\n"
              "    __import__('htcondor2')\n    importlib.import_module('..pool.roles', __package__)\n"
              "    importlib.import_module(name)\n")
    found = {what for _, what in imports_of(source, ("condor_docker", "starter"))}
    assert {"engine", "docker", "agent", "local", "admin", "htcondor2", "pool", "<dynamic>"} <= found
    assert "engine" in {what for _, what in imported_sides(PACKAGE / "agent" / "jobs.py")}


def module_imports(path: Path) -> set[str]:
    """The condor_docker modules a file imports (dotted, e.g. 'agent.jobs'), lazy imports included."""
    tree = ast.parse(path.read_text())
    package_parts = ["condor_docker", *path.relative_to(PACKAGE).parts[:-1]]
    known = {".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in sources()}
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package_parts[:len(package_parts) - node.level + 1] if node.level else []
            parts = base + (node.module.split(".") if node.module else [])
            if parts[:1] != ["condor_docker"]:
                continue
            module = ".".join(parts[1:])
            for alias in node.names:
                child = f"{module}.{alias.name}" if module else alias.name
                found.add(child if child in known else module)
        elif isinstance(node, ast.Import):
            found |= {a.name[len("condor_docker."):] for a in node.names if a.name.startswith("condor_docker.")}
    return {m for m in found if m in known}


def test_no_import_cycles():
    """No module reaches itself through imports, lazy ones included (they used to hide agent <-> jobs)."""
    graph = {".".join(p.relative_to(PACKAGE).with_suffix("").parts): module_imports(p) for p in sources()}
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in trail:
                cycles.append(trail[trail.index(target):] + [target])
            elif len(trail) < 30:
                visit(target, trail + [target])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, f"import cycles: {sorted({' -> '.join(c) for c in cycles})[:10]}"
