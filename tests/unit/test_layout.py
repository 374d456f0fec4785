"""The layout issue 19 asked for, kept: the pipeline's stages are subpackages, no module of gen's
is over 600 lines, no script under scripts/ over 150, and each stage package names its public
functions (and they resolve)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "generator"
STAGES = ("core", "spec", "lock", "render", "lint", "image", "validate", "release", "export")
MAX_MODULE_LINES = 600
MAX_SCRIPT_LINES = 150


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if "skeleton" not in p.relative_to(PACKAGE).parts)


def test_no_module_is_over_600_lines() -> None:
    big = {p.relative_to(REPO).as_posix(): n for p in _modules()
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, f"split these modules (lines): {big}"


def test_no_script_is_over_150_lines() -> None:
    long = {p.name: n for p in sorted((REPO / "scripts").rglob("*")) if p.is_file()
            and p.suffix in {".sh", ".py"}
            and (n := len(p.read_text().splitlines())) > MAX_SCRIPT_LINES}
    assert not long, f"scripts over {MAX_SCRIPT_LINES} lines: {long}"


def test_the_stages_are_subpackages() -> None:
    found = [s for s in STAGES if (PACKAGE / s / "__init__.py").is_file()]
    assert found == list(STAGES)
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "cli.py"], flat


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_names_its_public_functions(stage: str) -> None:
    pkg = importlib.import_module(f"generator.{stage}")
    assert pkg.__doc__ and pkg.__all__, f"generator/{stage}/__init__.py names nothing"
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    with pytest.raises(AttributeError):
        _ = pkg.no_such_name


# The pipeline's order as imports see it. lock and image share a level: image builds from the
# locks, and lock resolves image digests in the registry and builds the declared bases to lock.
LEVEL = {"core": 0, "spec": 1, "lock": 2, "image": 2, "lint": 3, "render": 4, "validate": 5,
         "release": 6, "export": 6}


def _imports(p: Path) -> list[str]:
    return [node.module for node in ast.walk(ast.parse(p.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
            and node.module.startswith("generator.")]


def test_no_stage_imports_a_later_one() -> None:
    bad = []
    for p in _modules():
        parts = p.relative_to(PACKAGE).parts
        if len(parts) < 2 or parts[0] not in LEVEL:
            continue
        for module in _imports(p):
            other = module.split(".")[1]
            if other in LEVEL and LEVEL[other] > LEVEL[parts[0]]:
                bad.append(f"{p.relative_to(REPO)} imports {module}")
    assert not bad, bad


def test_no_import_cycles() -> None:
    """Between modules (the packages' __init__s are lazy, so a cycle can only be a module's)."""
    graph: dict[str, set[str]] = {}
    for p in _modules():
        rel = p.relative_to(REPO).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        graph[name] = set(_imports(p))
    seen: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [])
