"""`gen export`: the rendered dataset + the built images -> what the real consumers load.

Three formats, each a pure function of the project (specs, templates, lockfiles) and the
record of built images (`.gen/build/images.json`): the same inputs give the same bytes.

* `tb`: Terminal-Bench task directories: the render output itself (every task, swe tasks
  included). A task whose image gen built runs that image by digest (its compose file names
  `repository@sha256:...` and builds nothing); an unbuilt task keeps the render's `build:`.
  The folder holds the task directories and nothing else (tb takes every entry as a task).
* `harbor`: Harbor (Terminal-Bench 2.0) task directories: `task.toml` with
  `[environment].docker_image` pinned by digest, `instruction.md`, `environment/Dockerfile`
  (`FROM` that same digest: a rebuild gives the same layers, not the same image ID), `tests/`
  (the task's tests, the sealed `run-tests.sh`, and `test.sh`: the grader writes
  `/logs/verifier/reward.txt`) and
  `solution/solve.sh`. The verifier runs in the agent's container (`environment_mode =
  "shared"`), as in Terminal-Bench.
* `swebench`: `instances.jsonl` (one SWE-bench 5.x instance per swe task, with `image`,
  `eval_script`, `log_parser`, `eval_type`), the task-repo layout `swebench dataset check`
  accepts (`sweb.yaml`, `tasks/<id>/...`), and `images.json` mapping the image name the
  harness looks up (`swebench/sweb.eval.x86_64.<id>:latest`) to the gen-built image by digest.
  `load_into_docker` pulls each by digest and tags it under that name (`gen export --load`).

Harbor and SWE-bench exports need every image built (`gen build`); `allow_unbuilt` exports
the Dockerfile build instead (the render's Dockerfile and its context, which a build
completes with `vendor/` from `gen build`), recorded as such in the metadata.

Every export is linted with `generator.lint.common` before anything is written, then
written into a temp directory next to `--out` and renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from generator.core.errors import UsageError
from generator.core.fsutil import write_new
from generator.export.common import (
    DIR_MODE,
    ExportPlan,
    _by_task,
    _check_image,
    _Templates,
    strength_figures,
)
from generator.export.docker import EXPORT_IMAGES_FILE
from generator.export.harbor import _plan_harbor
from generator.export.swebench import SWEBENCH_INSTANCES, _plan_swebench
from generator.export.tb import _plan_tb
from generator.image.images import BuiltImage, load_images
from generator.image.toolchain import is_sealed, seal_script, toolchain_for
from generator.render.context import RenderedFile
from generator.render.pipeline import plan_render
from generator.spec.model import SweTask
from generator.spec.project import load_project

__all__ = [
    "FORMATS",
    "export",
    "plan_export",
    "write_export",
]

FORMATS = ("tb", "harbor", "swebench")


def plan_export(project: Path, fmt: str, *, allow_unbuilt: bool = False,
                only: Sequence[str] | None = None, jobs: int | None = 1,
                progress: Callable[[int], None] | None = None) -> ExportPlan:
    """Every file of the export, in memory. Pure: reads the project and images.json only.

    Renders the dataset in memory (the same bytes `gen render` writes), takes each task's
    image from `.gen/build/images.json`, builds the format, and lints it as its consumer
    would load it. Raises InputError/LintError (exit 2) on anything a consumer would reject
    or silently ignore, and on a missing image (harbor, swebench) unless allow_unbuilt.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", hint=f"use one of {', '.join(FORMATS)}")
    project = Path(project).resolve()
    proj = load_project(project)
    config = proj.config
    render_plan = plan_render(project, only=only, jobs=jobs, progress=progress)
    rendered = _by_task(render_plan.files)
    wanted = set(render_plan.tasks)
    tasks = sorted((t for t in proj.tasks if t.id in wanted), key=lambda t: t.id)
    platform = config.platforms[0]
    images = {tid: img for tid, img in load_images(project).items() if tid in wanted}
    for task in tasks:
        if task.id in images:
            _check_image(task, images[task.id], platform)
            _seal(project, rendered[task.id], images[task.id])
    tmpl = _Templates(project, config.templates)
    plan = ExportPlan(format=fmt, tasks=[t.id for t in tasks])
    plan.unsealed = [t.id for t in tasks if not is_sealed(rendered[t.id]["run-tests.sh"].data)]
    plan.strength = strength_figures(project, images)
    if fmt == "tb":
        _plan_tb(tasks, rendered, images, tmpl, plan)
    elif fmt == "harbor":
        _plan_harbor(tasks, rendered, images, tmpl, plan, config.name, config.version,
                     allow_unbuilt)
    else:
        _plan_swebench(tasks, rendered, images, tmpl, plan, config.name,
                       config.source_date_epoch, allow_unbuilt)
        plan.tasks = sorted(t.id for t in tasks if isinstance(t, SweTask))
    plan.files = dict(sorted(plan.files.items()))
    return plan


# --------------------------------------------------------------------------------------
# Writing: temp dir next to --out, then rename into place
# --------------------------------------------------------------------------------------


def _looks_like_export(out: Path, fmt: str) -> bool:
    """Whether replacing `out` can only lose an earlier export of the same format."""
    entries = list(out.iterdir())
    if not entries:
        return True
    if fmt == "swebench":
        return {e.name for e in entries} <= {SWEBENCH_INSTANCES, "sweb.yaml", "tasks",
                                               EXPORT_IMAGES_FILE}
    marker = "task.yaml" if fmt == "tb" else "task.toml"
    return all(e.is_dir() and not e.is_symlink() and (e / marker).is_file() for e in entries)


def _check_out(project: Path, given: Path, fmt: str) -> None:
    project = project.resolve()
    if given.is_symlink():
        raise UsageError(f"--out {given} is a symlink", hint="name the real folder")
    out = given.resolve()
    if out == project or project.is_relative_to(out):
        raise UsageError(f"--out {out} would replace the project", hint="pick another folder")
    for inside in ("tasks", "lockfiles", "templates", "dataset", ".gen/build"):
        if out.is_relative_to(project / inside):
            raise UsageError(f"--out {out} is inside the project's {inside}/",
                             hint="export to a folder of its own, e.g. export/" + fmt)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory",
                         hint="pick another folder")
    if out.is_dir() and not _looks_like_export(out, fmt):
        raise UsageError(f"--out {out} is not empty and is not a {fmt} export",
                         hint="pick an empty or new folder, or remove it first")


def write_export(plan: ExportPlan, out: Path, *, project: Path | None = None) -> None:
    """Write the plan as the whole content of `out`: staged in a temp dir next to it, then
    renamed into place (an existing earlier export is replaced; nothing is half-written)."""
    out = Path(out).absolute()
    if project is not None:
        _check_out(project, out, plan.format)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.gen-export-{os.getpid()}"
    old = out.parent / f".{out.name}.gen-old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.mkdir(tmp)
        os.chmod(tmp, DIR_MODE)
        made = {tmp}
        for rel, rf in plan.files.items():
            target = tmp / rel
            for parent in reversed(target.relative_to(tmp).parents[:-1]):
                d = tmp / parent
                if d not in made:
                    os.mkdir(d)
                    os.chmod(d, DIR_MODE)
                    made.add(d)
            write_new(target, rf.data, rf.mode)
        if out.exists():
            os.rename(out, old)
            try:
                os.rename(tmp, out)
            except BaseException:
                os.rename(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export(project: Path, fmt: str, out: Path, *, allow_unbuilt: bool = False,
           only: Sequence[str] | None = None, jobs: int | None = 1,
           progress: Callable[[int], None] | None = None) -> ExportPlan:
    """plan_export + write_export: the whole `gen export` minus --load."""
    plan = plan_export(project, fmt, allow_unbuilt=allow_unbuilt, only=only, jobs=jobs,
                       progress=progress)
    write_export(plan, out, project=project)
    return plan


def _seal(project: Path, files: dict[str, RenderedFile], image: BuiltImage) -> None:
    """Fill the sealed test scripts' toolchain record from the built image (docs/grading.md);
    a script rendered without sealed grading is left as it is."""
    names = [n for n in ("run-tests.sh", "eval.sh") if n in files and is_sealed(files[n].data)]
    if not names:
        return
    record = toolchain_for(project, image.layout, image.digest)
    for n in names:
        text = seal_script(files[n].data.decode("utf-8"), record)
        files[n] = RenderedFile(text.encode("utf-8"), files[n].mode)
