"""Stage 4, `gen validate`: each task's tests fail before the fix and pass after (project), run in
an engine (runner), checked before anything runs (checks), run state by state (runs), graded
from the test log (testlog, grading); derived lists written back into the spec (spec_edit)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "validate_project": "project",
    "replace_spec_lists": "spec_edit",
    "TaskVerdict": "grading",
    "get_runner": "runner",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
