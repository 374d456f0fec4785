"""One task rendered in memory: render_task fills the task's templates with its context and copies
its files (tests, sources, patches) into a dict of relative path -> RenderedFile."""

from __future__ import annotations

import json
import os
from typing import Any

import jinja2

from generator.core.errors import InputError
from generator.core.layout import APT_SUMS, PYTHON_REQUIREMENTS
from generator.lint.dockerfile import lint_dockerfile, lint_script
from generator.lock.lockset import LockSet
from generator.render.context import RenderedFile, task_context
from generator.render.grading import grader_source, grading_config, grading_shell
from generator.render.templates import (
    FILE_MODE,
    OUTPUTS,
    PACKAGE_TEMPLATES,
    SCRIPT_MODE,
    TemplateSet,
)
from generator.spec.files import TaskFiles
from generator.spec.model import DatasetConfig, SweTask, Task, TerminalTask

__all__ = [
    "render_task",
]


_PACKAGE_PREFIX = f"{PACKAGE_TEMPLATES}/"


def _copy_tree(listing: TaskFiles, rel: str, dest_prefix: str, out: dict[str, RenderedFile],
               *, force_mode: int | None = None) -> None:
    """Copy a task's file, or every file below its directory, verbatim into `out`."""
    root = listing.root
    if listing.is_file(rel):
        files = [(rel, dest_prefix)]
    else:
        cut = len(rel) + 1
        files = [(f, f"{dest_prefix}/{f[cut:]}") for f in listing.files_under(rel)]
    for f, dest in files:
        data = listing.read_bytes(f)
        if force_mode is not None:
            mode = force_mode
        else:
            st = listing.stats.get(f)
            if st is None:  # reached through a symlink
                st = os.stat(f"{root}/{f}")
            mode = SCRIPT_MODE if st.st_mode & 0o111 else FILE_MODE
        out[dest] = RenderedFile(data, mode)


def render_task(task: Task, config: DatasetConfig, locks: LockSet, templates: TemplateSet,
                listing: TaskFiles | None = None) -> dict[str, RenderedFile]:
    """All files of one task, as paths relative to the task's output directory."""
    ctx = task_context(task, config, locks)
    out: dict[str, RenderedFile] = {}
    # inputs copied verbatim first, so README can list every file
    if isinstance(task, TerminalTask):
        if listing is None:
            listing = TaskFiles(task.path)
        _copy_tree(listing, task.tests_dir, "tests", out)
        for f in task.files:
            _copy_tree(listing, f.src, f"files/{f.src}", out,
                       force_mode=None if f.mode is None else (
                           SCRIPT_MODE if f.mode & 0o111 else FILE_MODE))
    else:
        out["tests/test.patch"] = RenderedFile(_ensure_nl(task.test_patch).encode(), FILE_MODE)
        tests_json = json.dumps({"FAIL_TO_PASS": list(task.fail_to_pass),
                                 "PASS_TO_PASS": list(task.pass_to_pass)}, indent=2) + "\n"
        out["tests/tests.json"] = RenderedFile(tests_json.encode(), FILE_MODE)
    if ctx["apt"]:
        lines = "".join(f"{p['sha256']}  {p['filename']}\n" for p in ctx["apt"])
        out[APT_SUMS] = RenderedFile(lines.encode(), FILE_MODE)
    if ctx["python"]:
        out[PYTHON_REQUIREMENTS] = RenderedFile(ctx["python_lock"].encode(), FILE_MODE)
    outputs = OUTPUTS[task.kind]
    ctx["out_files"] = sorted({*out, *(name for name, _, _ in outputs)})
    if isinstance(task, SweTask):
        ctx["gold_patch"] = _ensure_nl(task.patch)
        ctx["test_patch"] = _ensure_nl(task.test_patch)
    ctx["grading"] = grading_config(task, ctx, out)
    ctx["grading_json"] = grading_shell(ctx["grading"])
    ctx["grader_source"] = grader_source()
    overridden = False
    env = templates.env_for(task.path, None if listing is None else listing.is_dir("templates"))
    for name, template_name, mode in outputs:
        template = templates.get(task, template_name, env)
        if not (template.filename or "").startswith(_PACKAGE_PREFIX):
            overridden = True
        try:
            text = _render_template(template, ctx)
        except jinja2.UndefinedError as exc:
            raise InputError(f"template '{template.name}' uses an undefined value: {exc.message}",
                             file=template.filename, hint="fix the template or the spec") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"template '{template.name}' failed: {exc}", file=template.filename,
                             hint="fix the template") from None
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        where = f"dataset/{task.id}/{name} (from {template.filename})"
        if name == "Dockerfile":
            lint_dockerfile(text, where=where, task_id=task.id)
        elif name.endswith(".sh"):
            lint_script(text, where=where, task_id=task.id)
        out[name] = RenderedFile(text.encode("utf-8"), mode)
    if overridden:
        # what Terminal-Bench would reject or silently ignore (misspelled keys, bad compose...)
        # in what an override template wrote; gen's own templates are held to it by the tests
        from generator.lint.tb import lint_tb_task

        lint_tb_task(task.id, out)
    return out


_MERGED_GLOBALS: dict[jinja2.Template, dict[str, Any]] = {}


def _render_template(template: jinja2.Template, ctx: dict[str, Any]) -> str:
    """`template.render(ctx)`, without re-merging the template's globals on every call.

    Jinja keeps a template's globals in a ChainMap and copies it into a new dict per render,
    which costs as much as rendering a short template; the merge is done once per template
    here and the context is shared (Jinja does not mutate it).
    """
    merged = _MERGED_GLOBALS.get(template)
    if merged is None:
        merged = _MERGED_GLOBALS[template] = dict(template.globals)
    # as Template.new_context(vars, shared=True), minus a second copy of the globals
    # (they only matter to imports "without context", which then use the same globals)
    env = template.environment
    context = env.context_class(env, {**merged, **ctx}, template.name, template.blocks)
    try:
        return template.environment.concat(template.root_render_func(context))
    except Exception:
        template.environment.handle_exception()
        raise  # pragma: no cover - handle_exception always raises


def _ensure_nl(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
