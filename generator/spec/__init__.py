"""Stage 0, the specs: gen.yaml and tasks/<id>/task.yaml read into typed objects (project), and
`gen init`'s skeleton (scaffold)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "load_project": "project",
    "load_dataset_config": "project",
    "discover_tasks": "project",
    "init_project": "scaffold",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
