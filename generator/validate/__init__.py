"""Stage 4, `gen validate`: each task's tests fail before the fix and pass after (project), run in
an engine (runner), graded from the test log (testlog)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "validate_project": "project",
    "get_runner": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
