"""The Terminal-Bench format: each task's rendered dir as tb run --dataset-path loads it
(task.yaml, docker-compose.yaml, Dockerfile, run-tests.sh, solution.sh, tests/), with its
Dockerfile's FROM pinned to the built image's digest."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from generator.export.common import (
    ExportPlan,
    _file,
    _Templates,
)
from generator.image.images import BuiltImage
from generator.lint.tb import lint_tb_dataset
from generator.render.context import RenderedFile
from generator.spec.model import Task

# each task's test-strength figures (gen validate --strength on the exported image)
STRENGTH_FILE = "test_strength.json"


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
        if task.id in plan.strength:  # tb's task.yaml takes no key of gen's: a file beside it
            files[STRENGTH_FILE] = _file(json.dumps(plan.strength[task.id], indent=2,
                                                    sort_keys=True) + "\n")
        per_task[task.id] = files
        for sub, rf in files.items():
            plan.files[f"{task.id}/{sub}"] = rf
    lint_tb_dataset(per_task, root="<out>")
