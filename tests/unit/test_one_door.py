"""One door to external programs: generator/core/proc.py is the only module of gen that imports
subprocess or starts a program another way (os.system, os.popen, os.exec*, os.spawn*,
os.posix_spawn*, pty.spawn, asyncio's subprocesses). Ruff's TID251 rule says the same for
subprocess (pyproject.toml); this parses every module, cheaply, for the rest too.
generator/skeleton/ is a task's own code (copied into a new project), and
generator/templates/_grader.py runs inside task containers (the sealed grader): not gen's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "generator"
DOOR = PACKAGE / "core" / "proc.py"
SKELETON = PACKAGE / "skeleton"
GRADER = PACKAGE / "templates" / "_grader.py"

_OS_RUNNERS = re.compile(r"(system|popen|exec\w*|spawn\w*|posix_spawn\w*|fork\w*)\Z")
_BANNED_ATTRS = {"pty": re.compile(r"spawn\Z"),
                 "asyncio": re.compile(r"create_subprocess_\w+\Z"),
                 "os": _OS_RUNNERS}


def side_doors(source: str) -> list[str]:
    """Each way `source` starts a program other than through core/proc: 'line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] == "subprocess"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top == "subprocess":
                found.append(f"{node.lineno}: from {node.module} import ...")
            elif top in _BANNED_ATTRS:
                found += [f"{node.lineno}: from {node.module} import {a.name}"
                          for a in node.names if _BANNED_ATTRS[top].match(a.name)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pattern = _BANNED_ATTRS.get(node.value.id)
            if pattern is not None and pattern.match(node.attr):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "__import__" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "subprocess":
            found.append(f"{node.lineno}: __import__('subprocess')")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == "subprocess":
            found.append(f"{node.lineno}: import_module('subprocess')")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if SKELETON not in p.parents and p != GRADER)


def test_only_core_proc_runs_programs() -> None:
    modules = _modules()
    assert DOOR in modules and len(modules) > 50
    offenders = {str(p.relative_to(PACKAGE.parent)): doors for p in modules if p != DOOR
                 for doors in [side_doors(p.read_text(encoding="utf-8"))] if doors}
    assert offenders == {}, "run programs through generator.core.proc.run (or spawn)"
    assert side_doors(DOOR.read_text(encoding="utf-8"))  # the door itself is seen


@pytest.mark.parametrize("source", [
    "import subprocess\n",
    "import subprocess as sp\n",
    "from subprocess import run\n",
    "def f():\n    import subprocess\n",
    "import os\nos.system('true')\n",
    "import os\nos.popen('true')\n",
    "import os\nos.execvp('true', ['true'])\n",
    "import os\nos.spawnlp(os.P_WAIT, 'true', 'true')\n",
    "import os\nos.posix_spawnp('true', ['true'], {})\n",
    "import os\nos.fork()\n",
    "from os import system\n",
    "from os import execv as ex\n",
    "import pty\npty.spawn(['sh'])\n",
    "from pty import spawn\n",
    "import asyncio\nasyncio.create_subprocess_exec('true')\n",
    "__import__('subprocess')\n",
    "import importlib\nimportlib.import_module('subprocess')\n",
])
def test_side_doors_are_found(source: str) -> None:
    assert side_doors(source)


@pytest.mark.parametrize("source", [
    "import os\nos.environ.get('X')\nos.path.join('a')\n",
    "from os import environ, path\n",
    "from generator.core import proc\nproc.run(['true'], what='x')\n",
    "import shutil\nshutil.which('buildah')\n",
])
def test_other_uses_are_not_side_doors(source: str) -> None:
    assert side_doors(source) == []
