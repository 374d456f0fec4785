"""What every stage shares: errors and exit codes (errors), files written whole (fsutil), the
content-addressed store (cas), the one door to external programs (proc), progress bars
(progress), JSON reports (report), build-context layout (layout)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "GenError": "errors",
    "UsageError": "errors",
    "InputError": "errors",
    "ToolError": "errors",
    "CheckFailed": "errors",
    "atomic_write": "fsutil",
    "project_lock": "fsutil",
    "Store": "cas",
    "default_store": "cas",
    "run": "proc",
    "progress_bar": "progress",
    "Report": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
