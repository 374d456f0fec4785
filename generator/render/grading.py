"""What the rendered test scripts need for sealed grading (docs/grading.md): the task's pytest
arguments, parsed from its test command, its test files with their sha256 (terminal tasks) or
its base commit, test files and test patch (swe tasks), and gen's grader itself
(templates/_grader.py, run inside the container by the script's bootstrap).

A test command that is not one plain pytest call (`pytest ARGS`, `python3 -m pytest ARGS`) is
rendered as before, not sealed; `gen validate --tamper` then shows what gets through."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from generator.render.context import RenderedFile
from generator.spec.model import SweTask, Task, TerminalTask

__all__ = ["grader_source", "grading_config", "grading_shell", "pytest_args"]

_PYTEST = (("pytest",), ("py.test",), ("python", "-m", "pytest"), ("python3", "-m", "pytest"))
_SHELL_META = set("|&;<>()`*?[]{}!~#")


@cache
def grader_source() -> str:
    return (resources.files("generator") / "templates" / "_grader.py").read_text("utf-8")


def pytest_args(command: str) -> list[str] | None:
    """The arguments of a plain pytest command line, "$TEST_DIR" as {TEST_DIR}; None when the
    command is anything else (a pipeline, another program, other variables, globs)."""
    try:
        words = shlex.split(command, posix=True)
    except ValueError:
        return None
    for head in _PYTEST:
        if tuple(words[:len(head)]) == head:
            rest = words[len(head):]
            break
    else:
        return None
    # on the raw command: shlex.split drops the quotes and escapes that kept a word whole
    if any(c in _SHELL_META for c in command.replace('"$TEST_DIR"', "")
           .replace("${TEST_DIR}", "").replace("$TEST_DIR", "")):
        return None
    out = []
    for w in rest:
        w = w.replace("${TEST_DIR}", "{TEST_DIR}").replace("$TEST_DIR", "{TEST_DIR}")
        if "$" in w:  # any other variable
            return None
        out.append(w)
    return out


def grading_shell(config: Mapping[str, Any] | None) -> str:
    """The grader's task input as one shell word (single-quoted JSON on one line)."""
    return shlex.quote(json.dumps(config, sort_keys=True, ensure_ascii=False))


def grading_config(task: Task, ctx: Mapping[str, Any],
                   files: Mapping[str, RenderedFile]) -> dict[str, Any] | None:
    """The task's part of the grader's input, or None when its tests cannot be sealed."""
    args = pytest_args(str(ctx["test_command"]))
    if args is None:
        return None
    env = {k: str(v) for k, v in ctx["env"]}
    config: dict[str, Any] = {"workdir": ctx["workdir"], "pytest_args": args, "env": env,
                              "timeout_sec": float(task.timeouts.test_sec)}
    if isinstance(task, TerminalTask):
        tests = {p.removeprefix("tests/"): f for p, f in files.items() if p.startswith("tests/")}
        config["test_files"] = {p: hashlib.sha256(f.data).hexdigest()
                                for p, f in sorted(tests.items())}
        config["executable"] = sorted(p for p, f in tests.items() if f.mode & 0o111)
    else:
        assert isinstance(task, SweTask)
        config["base_commit"] = task.base_commit
        config["test_files"] = list(ctx["test_files"])
        config["test_patch"] = ctx["test_patch"]
    return config
