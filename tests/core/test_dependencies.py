"""Issue 12.1: every module the code, the tests and the benchmarks import is installed by
README's install command (`pip install -e ".[test]"`), i.e. declared in pyproject.toml.

A test once imported numpy, which no extra declared; CI passed only because the machine had it.
`.ci/run` now installs into a brand-new venv; this test also names the undeclared import
wherever the suite runs."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"twin", "tests", "bench", "migrations"}
# Installed by a declared dependency that pins it exactly, and part of its public API.
COMES_WITH = {"pydantic_core": "pydantic"}


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imports(root: Path) -> dict[str, str]:
    """Top-level module imported → the first file importing it."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], str(path.relative_to(REPO)))
    return found


def _undeclared(roots: list[str], declared: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for root in roots:
        for module, where in sorted(_imports(REPO / root).items()):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            if COMES_WITH.get(module) in declared:
                continue
            names = {_name(d) for d in distributions.get(module, [])}
            if not names:
                problems.append(f"{module} (imported by {where}) is not installed")
            elif not names & declared:
                problems.append(f"{module} (imported by {where}): declare one of {sorted(names)}")
    return problems


def test_every_import_is_a_declared_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    # an optional feature's imports (`twin style eval`: the `eval` extra) are imported lazily
    # by that feature only; `test` takes them in as "twin[eval]"
    optional = {_name(r) for name, reqs in extras.items() if name != "test" for r in reqs}
    test = runtime | {_name(r) for r in extras["test"]}
    for requirement in extras["test"]:
        if requirement.startswith("twin["):
            for extra in requirement[5:-1].split(","):
                test |= {_name(r) for r in extras[extra.strip()]}
    assert _undeclared(["twin", "migrations"], runtime | optional) == []
    assert _undeclared(["tests", "bench"], test) == []
