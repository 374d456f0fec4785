"""Static checks of what render and export write: Dockerfiles and scripts (dockerfile), and each
consumer's task format (consumers)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "lint_dockerfile": "dockerfile",
    "lint_script": "dockerfile",
    "lint_tb_task": "consumers",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
