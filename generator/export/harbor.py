"""The Harbor format: task.toml (metadata, verifier and agent timeouts, the environment's image by
digest), instruction.md, environment/Dockerfile, solution/solve.sh and tests/test.sh, as harbor
run loads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator import __version__
from generator.core.layout import in_build_context
from generator.export.common import (
    ExportPlan,
    _ensure_nl,
    _file,
    _missing_image,
    _Templates,
)
from generator.export.toml import toml_document
from generator.image.images import BuiltImage
from generator.image.toolchain import is_sealed
from generator.lint.dockerfile import lint_dockerfile, lint_script
from generator.lint.harbor import lint_harbor_task
from generator.render.context import RenderedFile
from generator.render.templates import SCRIPT_MODE
from generator.spec.model import SweTask, Task


def _harbor_toml(task: Task, config_name: str, config_version: str,
                 img: BuiltImage | None, strength: dict[str, Any] | None = None) -> str:
    instruction = task.instruction.strip()
    description = next((ln.strip() for ln in instruction.splitlines() if ln.strip()), "")
    if len(description) > 200:
        description = description[:197].rstrip() + "..."
    metadata: dict[str, Any] = {
        "author_name": task.author.name,
        "author_email": task.author.email,
        "difficulty": task.difficulty,
        "category": task.category,
        "tags": list(task.tags),
        "kind": task.kind,
        "gen_version": __version__,
        "gen_dataset": f"{config_name} {config_version}",
    }
    if isinstance(task, SweTask):
        metadata.update(repo=task.repo, base_commit=task.base_commit)
    metadata["image"] = img.ref if img is not None else "unbuilt (environment/Dockerfile)"
    if strength:
        metadata["test_strength"] = dict(strength)
    # The verifier runs in the agent's container, as Terminal-Bench runs run-tests.sh: the
    # tests judge the state the agent left. Said here so `harbor lint` (whose defaults flag
    # every shared verifier) knows it is deliberate.
    metadata["harbor"] = {"lint": {"ignore": ["shared-verifier"]}}
    cpus: int | float = int(task.resources.cpus) if float(task.resources.cpus).is_integer() \
        else task.resources.cpus
    environment: dict[str, Any] = {"build_timeout_sec": 600.0}
    if img is not None:
        environment["docker_image"] = img.ref
    environment.update(cpus=cpus, memory_mb=int(task.resources.memory_mb),
                       workdir=task.environment.workdir)
    doc: dict[str, Any] = {
        "schema_version": "1.4",
        "task": {
            "name": f"{config_name}/{task.id}",
            "version": config_version,
            "description": description,
            "authors": [{"name": task.author.name, "email": task.author.email}],
            "keywords": list(task.tags),
        },
        "metadata": metadata,
        "verifier": {"timeout_sec": float(task.timeouts.test_sec), "environment_mode": "shared"},
        "agent": {"timeout_sec": float(task.timeouts.agent_sec)},
        "environment": environment,
        "solution": {"env": {}},
    }
    return toml_document(doc)


def _plan_harbor(tasks: Sequence[Task], rendered: Mapping[str, dict[str, RenderedFile]],
                 images: Mapping[str, BuiltImage], tmpl: _Templates, plan: ExportPlan,
                 name: str, version: str, allow_unbuilt: bool) -> None:
    for task in tasks:
        src = rendered[task.id]
        img = images.get(task.id)
        if img is None and not allow_unbuilt:
            raise _missing_image(task.id)
        files: dict[str, RenderedFile] = {
            "task.toml": _file(_harbor_toml(task, name, version, img,
                                            plan.strength.get(task.id))),
            "instruction.md": _file(_ensure_nl(task.instruction)),
            "solution/solve.sh": RenderedFile(src["solution.sh"].data, SCRIPT_MODE),
            "tests/run-tests.sh": RenderedFile(src["run-tests.sh"].data, SCRIPT_MODE),
        }
        test_sh = tmpl.render("harbor/test.sh", task=task,
                              sealed=is_sealed(src["run-tests.sh"].data))
        lint_script(test_sh, where=f"<out>/{task.id}/tests/test.sh", task_id=task.id)
        files["tests/test.sh"] = _file(test_sh, SCRIPT_MODE)
        for sub, rf in src.items():
            if sub.startswith("tests/"):
                files[sub] = rf
        if img is not None:
            dockerfile = tmpl.render("harbor/Dockerfile", task=task, image=img)
            lint_dockerfile(dockerfile, where=f"<out>/{task.id}/environment/Dockerfile",
                            task_id=task.id)
            files["environment/Dockerfile"] = _file(dockerfile)
            plan.images[task.id] = img.ref
        else:
            # the render's build context, its Dockerfile included (vendor/ comes from
            # `gen build`)
            for sub, rf in src.items():
                if in_build_context(sub):
                    files[f"environment/{sub}"] = rf
            plan.unbuilt.append(task.id)
        lint_harbor_task(task.id, files, root="<out>")
        for sub, rf in files.items():
            plan.files[f"{task.id}/{sub}"] = rf
