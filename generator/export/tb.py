"""The Terminal-Bench format: each task's rendered dir as tb run --dataset-path loads it
(task.yaml, docker-compose.yaml, Dockerfile, run-tests.sh, solution.sh, tests/), with its
Dockerfile's FROM pinned to the built image's digest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.core import yamltext
from generator.export.common import (
    ExportPlan,
    _file,
    _Templates,
)
from generator.image.images import BuiltImage
from generator.lint.tb import lint_tb_dataset
from generator.render.context import RenderedFile
from generator.spec.model import Task


def strength_yaml(fig: Mapping[str, Any]) -> str:
    """The test-strength figures as a task.yaml mapping (gen's own key; tb ignores it)."""
    return "# gen validate --strength, on this image\ntest_strength:\n" + "".join(
        f"  {k}: {yamltext.scalar(v)}\n" for k, v in sorted(fig.items()))


def _plan_tb(tasks: Sequence[Task], rendered: Mapping[str, dict[str, RenderedFile]],
             images: Mapping[str, BuiltImage], tmpl: _Templates, plan: ExportPlan) -> None:
    per_task: dict[str, dict[str, RenderedFile]] = {}
    for task in tasks:
        files = dict(rendered[task.id])
        img = images.get(task.id)
        if img is not None:
            files["docker-compose.yaml"] = _file(tmpl.render(
                "tb/docker-compose.yaml", task=task, image=img))
            plan.images[task.id] = img.ref
        else:
            plan.unbuilt.append(task.id)
        if task.id in plan.strength:  # appended to the exported task.yaml (dataset/ stays pure)
            files["task.yaml"] = _file(files["task.yaml"].data.decode("utf-8").rstrip("\n")
                                       + "\n" + strength_yaml(plan.strength[task.id]))
        per_task[task.id] = files
        for sub, rf in files.items():
            plan.files[f"{task.id}/{sub}"] = rf
    lint_tb_dataset(per_task, root="<out>")
