"""Lints for what the downstream consumers accept *silently* but get wrong.

terminal-bench 0.2.18, harbor 0.25.0 and swebench 5.0.2 (see BUILD.md / the consumers
reference) load their inputs with models that ignore unknown keys, and their dataset loaders
skip (harbor) or mis-handle (tb, swebench) tasks instead of failing. A misspelled
`max_test_timeout_sec` or `[verifer]` loads fine and runs with the default; a harbor task
without tests/test.sh simply disappears from the dataset. gen refuses all of these at
render/export time: every function here raises `LintError` (exit 2) with one line naming the
file, the field and the fix.

The schemas below are those of the pinned consumer versions; the consumer tests
(tests/consumers/) load gen's output with the consumers' own code and would catch drift.

This module holds what the three share; the entry points are one module per consumer:
    tb.lint_tb_task(task_id, files)          one Terminal-Bench task dir (render output)
    tb.lint_tb_dataset(tasks)                every task + dataset-wide checks (instructions)
    harbor.lint_harbor_task(task_id, files)  one Harbor task dir
    swebench.lint_swebench_instances(rows)   SWE-bench instances (the .jsonl rows)
    swebench.lint_swebench_task_repo(files)  the task-repo layout `swebench dataset check` reads
`files` map paths relative to the task dir (or export root) to bytes, or to objects with a
`.data` bytes attribute and a `.mode` (gen's RenderedFile).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import yaml

from generator.core.errors import LintError

__all__ = [
]


class _HasData(Protocol):
    @property
    def data(self) -> bytes: ...

    @property
    def mode(self) -> int: ...


FileMap = Mapping[str, "bytes | _HasData"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _bytes(value: bytes | _HasData) -> bytes:
    return value if isinstance(value, bytes) else value.data


def _mode(value: bytes | _HasData) -> int | None:
    return None if isinstance(value, bytes) else value.mode


def _text(files: FileMap, name: str) -> str:
    return _bytes(files[name]).decode("utf-8")


def _unknown(key: str, allowed: Iterable[str], consumer: str, where: str, field: str,
             ) -> LintError:
    names = sorted(allowed)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"rename it to '{close[0]}'" if close else \
        f"remove it; allowed keys here: {', '.join(names)}"
    return LintError(f"unknown key '{key}': {consumer} ignores it silently", file=where,
                     field=field, hint=hint)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------
# Terminal-Bench 0.2.18
# --------------------------------------------------------------------------------------


def _yaml_doc(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LintError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=where,
                        line=mark.line + 1 if mark else None,
                        hint="fix the template that writes it") from None


# --------------------------------------------------------------------------------------
# Harbor 0.25.0
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# SWE-bench 5.0.2
# --------------------------------------------------------------------------------------


