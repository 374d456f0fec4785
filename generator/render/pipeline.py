"""`gen render`: task specs + templates + lockfiles -> dataset/<id>/..., a pure offline function.

The stages, one module each:

- `spec` loads the specs (generator/spec); `templates` makes the strict, layered Jinja
  environment; `context` builds a task's template context from its locks; `task` renders one
  task in memory (relative path -> RenderedFile) and lints it;
- `plan_render` (here) renders every task and returns a `RenderPlan`: same inputs, same plan,
  on any machine;
- `render` (here) does the same through the worker pool (`workers`) and the stat cache
  (`cache`: an unchanged task is neither read nor rendered while every input and output file
  still has the size, mtime and inode recorded when it was last rendered or verified), stages
  the changed files and commits them (`commit`), so an error anywhere leaves the previous
  dataset untouched; with check=True it writes nothing and reports what differs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from generator.core.fsutil import DIR_MODE, make_dir
from generator.render.cache import _Cache, _fresh_names, _global_key
from generator.render.commit import _commit, _staging_dir
from generator.render.plan import RenderPlan, RenderResult
from generator.render.templates import TemplateSet
from generator.render.workers import _gc_tuned, _Job, _run_tasks
from generator.spec.config import load_dataset_config
from generator.spec.project import discover_tasks

__all__ = [
    "plan_render",
    "render",
]


def plan_render(project: Path, *, only: Sequence[str] | None = None, jobs: int | None = 1,
                progress: Callable[[int], None] | None = None) -> RenderPlan:
    """Render every task in memory (no output dir involved). Raises on the first bad input."""
    project = project.resolve()
    dirs = discover_tasks(project, only, check_specs=False)
    job = _Job(os.fspath(project), os.fspath(project / "dataset"), None, True, False)
    outcomes = _run_tasks(job, dirs, jobs=jobs, progress=progress)
    plan = RenderPlan(tasks=[d.name for d in dirs])
    for o in outcomes:
        for sub, rf in o.changed.items():
            plan.files[f"{o.task_id}/{sub}"] = rf
    return plan


def render(project: Path, out_dir: Path | None = None, *, check: bool = False,
           only: Sequence[str] | None = None, use_cache: bool = True, jobs: int | None = None,
           progress: Callable[[int], None] | None = None) -> RenderResult:
    """Render the project into out_dir (default: <project>/dataset).

    Every task is rendered and linted before anything under out_dir changes: a bad input
    anywhere raises with the previous output untouched.
    """
    with _gc_tuned():
        return _render(project, out_dir, check=check, only=only, use_cache=use_cache,
                       jobs=jobs, progress=progress)


def _render(project: Path, out_dir: Path | None, *, check: bool,
            only: Sequence[str] | None, use_cache: bool, jobs: int | None,
            progress: Callable[[int], None] | None) -> RenderResult:
    project = project.resolve()
    out = (out_dir or project / "dataset").resolve()
    config = load_dataset_config(project)
    templates = TemplateSet(project / config.templates)
    names = [d.name for d in discover_tasks(project, only, check_specs=False)]
    cache = _Cache(project, _global_key(project, templates, out),
                   use_cache and not check and only is None)
    out_s = os.fspath(out)
    out_exists = out.exists()
    # with no output dir, no task's outputs can still be as signed: nothing to check
    reused = _fresh_names(cache, names, os.fspath(project / "tasks"),
                          os.fspath(project / "lockfiles" / "tasks"), out_s, jobs) \
        if out_exists else set()
    todo = [project / "tasks" / n for n in names if n not in reused]
    if progress and reused:
        progress(len(reused))
    staging, whole = _staging_dir(out)
    if not check and todo:
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        make_dir(staging, DIR_MODE)  # a first render's staging dir becomes out_dir
    job = _Job(os.fspath(project), out_s, None if check else os.fspath(staging), False,
               cache.enabled, empty_out=not out_exists)
    try:
        outcomes = _run_tasks(job, todo, jobs=jobs, progress=progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _commit(project, out, names, reused, outcomes, cache, staging, whole, check=check,
                   prune=only is None)
