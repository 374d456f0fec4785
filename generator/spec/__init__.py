"""Stage 0, the specs: gen.yaml and tasks/<id>/task.yaml read into typed objects (project), and
`gen init`'s skeleton (scaffold). The model (model), gen.yaml (config), strict YAML
loading (yamlload), the field readers (fields) and a task directory's listing (files)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "load_project": "project",
    "load_dataset_config": "config",
    "discover_tasks": "project",
    "init_project": "scaffold",
    "DatasetConfig": "model",
    "Project": "model",
    "Task": "model",
    "TerminalTask": "model",
    "SweTask": "model",
    "SPEC_FILE": "model",
    "TaskFiles": "files",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
