"""Static checks of what render and export write: Dockerfiles and scripts (dockerfile), and each
consumer's task format (tb, harbor, swebench; what they share: common)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "lint_dockerfile": "dockerfile",
    "lint_script": "dockerfile",
    "lint_tb_task": "tb",
    "lint_tb_dataset": "tb",
    "lint_harbor_task": "harbor",
    "lint_swebench_instances": "swebench",
    "lint_swebench_task_repo": "swebench",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
