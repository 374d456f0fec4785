"""`gen export`: the rendered dataset + the built images -> what the real consumers load.

Three formats, each a pure function of the project (specs, templates, lockfiles) and the
record of built images (`.gen/build/images.json`): the same inputs give the same bytes.

* `tb`: Terminal-Bench task directories: the render output itself (every task, swe tasks
  included). A task whose image gen built runs that image by digest (its compose file names
  `repository@sha256:...` and builds nothing); an unbuilt task keeps the render's `build:`.
  The folder holds the task directories and nothing else (tb takes every entry as a task).
* `harbor`: Harbor (Terminal-Bench 2.0) task directories: `task.toml` with
  `[environment].docker_image` pinned by digest, `instruction.md`, `environment/Dockerfile`
  (`FROM` that same digest, so even a forced rebuild gives the same image), `tests/` (the
  task's tests, `run-tests.sh`, and `test.sh` writing `/logs/verifier/reward.txt`) and
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

Every export is linted with `generator.lint.consumers` before anything is written, then
written into a temp directory next to `--out` and renamed into place.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from generator import __version__
from generator.core import yamltext
from generator.core.errors import InputError, ToolError, UsageError
from generator.core.fsutil import write_new
from generator.core.layout import in_build_context
from generator.core.proc import run
from generator.image.images import IMAGES_FILE, BuiltImage, load_images
from generator.lint.consumers import (
    expected_swebench_image,
    lint_harbor_task,
    lint_swebench_instances,
    lint_swebench_task_repo,
    lint_tb_dataset,
)
from generator.lint.dockerfile import lint_dockerfile, lint_script
from generator.lock.lockfiles import DIGEST_RE
from generator.render.context import RenderedFile
from generator.render.pipeline import plan_render
from generator.render.templates import FILE_MODE, PACKAGE_TEMPLATES, SCRIPT_MODE, make_environment
from generator.spec.model import SweTask, Task
from generator.spec.project import load_project

__all__ = [
    "FORMATS",
    "ExportPlan",
    "export",
    "load_into_docker",
    "plan_export",
    "read_export_images",
    "toml_document",
    "write_export",
]

FORMATS = ("tb", "harbor", "swebench")
DIR_MODE = 0o755
EXPORT_IMAGES_FILE = "images.json"  # swebench export: harness image name -> built image
SWEBENCH_INSTANCES = "instances.jsonl"
SWEBENCH_SPLIT = "test"


@dataclass
class ExportPlan:
    """Every file of an export (path relative to the export root -> bytes + mode)."""

    format: str
    files: dict[str, RenderedFile] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # task id -> repository@digest
    unbuilt: list[str] = field(default_factory=list)  # tasks exported with a Dockerfile build
    docker_tags: dict[str, str] = field(default_factory=dict)  # swebench name -> image ref


# --------------------------------------------------------------------------------------
# TOML (harbor's task.toml): a small deterministic writer
# --------------------------------------------------------------------------------------

_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")
_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}


def _toml_str(value: str) -> str:
    out = []
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: str) -> str:
    return key if _BARE_KEY_RE.match(key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML cannot hold {value!r} here")
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_document(doc: Mapping[str, Any]) -> str:
    """Top-level scalars, then one `[table]` per dict value (nested dicts inline), in the
    mapping's own order: the caller decides the order, so the bytes are deterministic."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict)]
    for name, table in doc.items():
        if not isinstance(table, dict):
            continue
        if lines:
            lines.append("")
        lines.append(f"[{_toml_key(name)}]")
        lines.extend(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Inputs: the render plan, the built images, templates
# --------------------------------------------------------------------------------------


def _check_image(task: Task, img: BuiltImage, platform: str) -> None:
    where = IMAGES_FILE.as_posix()
    if not isinstance(img.digest, str) or not DIGEST_RE.match(img.digest):
        raise InputError(f"task '{task.id}': image digest {img.digest!r} is not sha256:<hex>",
                         file=where, field=f"images.{task.id}.digest",
                         hint="run `gen build` again")
    if img.ref != f"{img.repository}@{img.digest}":
        raise InputError(f"task '{task.id}': image ref {img.ref!r} is not "
                         f"<repository>@<digest>", file=where, field=f"images.{task.id}.ref",
                         hint="run `gen build` again")
    if img.platform != platform:
        raise InputError(f"task '{task.id}': image was built for {img.platform}, the dataset "
                         f"pins {platform}", file=where, field=f"images.{task.id}.platform",
                         hint="run `gen build` again")


def _by_task(files: Mapping[str, RenderedFile]) -> dict[str, dict[str, RenderedFile]]:
    out: dict[str, dict[str, RenderedFile]] = {}
    for rel, rf in files.items():
        task_id, _, sub = rel.partition("/")
        out.setdefault(task_id, {})[sub] = rf
    return out


class _Templates:
    """gen's export templates (`generator/templates/export/<format>/*.j2`), overridable by
    the dataset's `templates/export/<format>/*.j2`."""

    def __init__(self, project: Path, templates_dir: str) -> None:
        layers = [p for p in (project / templates_dir,) if p.is_dir()] + [PACKAGE_TEMPLATES]
        self.env = make_environment(layers)

    def render(self, name: str, **ctx: Any) -> str:
        try:
            template = self.env.get_template(f"export/{name}.j2")
            text = template.render(gen={"version": __version__}, **ctx)
        except jinja2.TemplateNotFound:
            raise InputError(f"no export template '{name}'", file=f"templates/export/{name}.j2",
                             hint="restore gen's default template") from None
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template syntax error: {exc.message}", file=exc.filename,
                             line=exc.lineno, hint="fix the template") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"export template '{name}' failed: {exc}",
                             file=f"templates/export/{name}.j2",
                             hint="fix the template") from None
        return text.replace("\r\n", "\n")


def _file(text: str, mode: int = FILE_MODE) -> RenderedFile:
    return RenderedFile(text.encode("utf-8"), mode)


def _ensure_nl(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _missing_image(task_id: str) -> InputError:
    return InputError(f"task {task_id} has no built image", file=IMAGES_FILE.as_posix(),
                      field=task_id, hint="run `gen build`, or export with --allow-unbuilt")


# --------------------------------------------------------------------------------------
# The three formats
# --------------------------------------------------------------------------------------


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
        per_task[task.id] = files
        for sub, rf in files.items():
            plan.files[f"{task.id}/{sub}"] = rf
    lint_tb_dataset(per_task, root="<out>")


def _harbor_toml(task: Task, config_name: str, config_version: str,
                 img: BuiltImage | None) -> str:
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
            "task.toml": _file(_harbor_toml(task, name, version, img)),
            "instruction.md": _file(_ensure_nl(task.instruction)),
            "solution/solve.sh": RenderedFile(src["solution.sh"].data, SCRIPT_MODE),
            "tests/run-tests.sh": RenderedFile(src["run-tests.sh"].data, SCRIPT_MODE),
        }
        test_sh = tmpl.render("harbor/test.sh", task=task)
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


def _created_at(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plan_swebench(tasks: Sequence[Task], rendered: Mapping[str, dict[str, RenderedFile]],
                   images: Mapping[str, BuiltImage], tmpl: _Templates, plan: ExportPlan,
                   name: str, epoch: int, allow_unbuilt: bool) -> None:
    swe = [t for t in tasks if isinstance(t, SweTask)]
    if not swe:
        raise InputError("no swe tasks to export as SWE-bench instances", file="tasks/",
                         hint="add a task with kind: swe, or pick --format tb|harbor")
    rows: list[dict[str, Any]] = []
    export_images: dict[str, dict[str, str]] = {}
    for task in swe:
        src = rendered[task.id]
        img = images.get(task.id)
        if img is None and not allow_unbuilt:
            raise _missing_image(task.id)
        image_name = expected_swebench_image(task.id)
        eval_script = src["eval.sh"].data.decode("utf-8")
        row: dict[str, Any] = {
            "instance_id": task.id,
            "repo": task.repo,
            "base_commit": task.base_commit,
            "version": task.version,
            "problem_statement": task.problem_statement,
            "hints_text": task.hints,
            "created_at": _created_at(epoch),
            "patch": _ensure_nl(task.patch),
            "test_patch": _ensure_nl(task.test_patch),
            "FAIL_TO_PASS": json.dumps(list(task.fail_to_pass)),
            "PASS_TO_PASS": json.dumps(list(task.pass_to_pass)),
            "environment_setup_commit": task.environment_setup_commit or task.base_commit,
            "image": image_name,
            "eval_script": eval_script,
            "log_parser": task.log_parser,
            "eval_type": task.eval_type,
        }
        rows.append(row)
        base = f"tasks/{task.id}"
        meta = {
            "instance_id": task.id, "repo": task.repo, "version": task.version,
            "base_commit": task.base_commit,
            "environment_setup_commit": row["environment_setup_commit"],
            "created_at": row["created_at"], "split": SWEBENCH_SPLIT, "image": image_name,
            "log_parser": task.log_parser, "eval_type": task.eval_type, "datasets": [name],
        }
        task_yaml = "".join(f"{k}: {yamltext.scalar(v)}\n" for k, v in sorted(meta.items()))
        tests = {"FAIL_TO_PASS": list(task.fail_to_pass),
                 "PASS_TO_PASS": list(task.pass_to_pass)}
        files = {
            "task.yaml": _file(f"# Generated by gen {__version__} from tasks/{task.id}/"
                               f"task.spec.yaml.\n{task_yaml}"),
            "tests.json": _file(json.dumps(tests, indent=2, ensure_ascii=False) + "\n"),
            "eval.sh": RenderedFile(src["eval.sh"].data, SCRIPT_MODE),
            "gold.patch": _file(row["patch"]),
            "test.patch": _file(row["test_patch"]),
            "problem_statement.md": _file(task.problem_statement),
        }
        if task.hints:
            files["hints.md"] = _file(task.hints)
        if img is not None:
            dockerfile = tmpl.render("swebench/Dockerfile", task=task, image=img,
                                     image_name=image_name)
            lint_dockerfile(dockerfile, where=f"<out>/{base}/Dockerfile", task_id=task.id)
            files["Dockerfile"] = _file(dockerfile)
            plan.images[task.id] = img.ref
            plan.docker_tags[image_name] = img.ref
            export_images[task.id] = {"name": image_name, "ref": img.ref,
                                      "digest": img.digest, "platform": img.platform}
        else:
            for sub, rf in src.items():  # the render's build context, its Dockerfile included
                if in_build_context(sub):
                    files[sub] = rf
            plan.unbuilt.append(task.id)
        for sub, rf in files.items():
            plan.files[f"{base}/{sub}"] = rf
    rows.sort(key=lambda r: str(r["instance_id"]))
    lint_swebench_instances(rows, where=f"<out>/{SWEBENCH_INSTANCES}")
    plan.files[SWEBENCH_INSTANCES] = _file("".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))
    plan.files["sweb.yaml"] = _file(
        f"# Generated by gen {__version__}: the SWE-bench task repo of dataset {name}.\n"
        f"datasets: [{yamltext.scalar(name)}]\nsplits: [{SWEBENCH_SPLIT}]\n")
    plan.files[EXPORT_IMAGES_FILE] = _file(json.dumps(
        {"schema": 1, "images": export_images}, indent=2, sort_keys=True) + "\n")
    lint_swebench_task_repo(plan.files, root="<out>")


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
    tmpl = _Templates(project, config.templates)
    plan = ExportPlan(format=fmt, tasks=[t.id for t in tasks])
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


# --------------------------------------------------------------------------------------
# Docker: the images under the names the SWE-bench harness looks up
# --------------------------------------------------------------------------------------


def read_export_images(out: Path) -> dict[str, str]:
    """images.json of a swebench export: harness image name -> gen-built image by digest."""
    path = Path(out) / EXPORT_IMAGES_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} is missing", file=str(path),
                         hint="run `gen export --format swebench` first") from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", file=str(path),
                         hint="export again") from None
    return {str(e["name"]): str(e["ref"]) for e in (data.get("images") or {}).values()}


def _docker(*args: str, what: str, timeout: float = 1800.0) -> str:
    result = run(["docker", *args], what=what, timeout=timeout,
                 fix="start the Docker engine (gen infra up) and set DOCKER_HOST "
                     "(eval \"$(gen infra env)\")")
    return str(result.stdout)


def load_into_docker(tags: Mapping[str, str] | Iterable[tuple[str, str]]
                     ) -> list[dict[str, str]]:
    """For each (name, repository@digest): pull the image by digest into the Docker engine
    (skipped if present), tag it `name`, and check the tag is that digest's image.

    Returns [{"name", "ref", "id"}] sorted by name. The engine is `docker` with the caller's
    DOCKER_HOST; a failure raises ToolError (exit 1) naming the image.
    """
    pairs = sorted(tags.items() if isinstance(tags, Mapping) else tags)
    done: list[dict[str, str]] = []
    for name, ref in pairs:
        have = run(["docker", "image", "inspect", "--format", "{{.Id}}", ref],
                   what=f"inspect {ref}", check=False, timeout=120)
        if have.returncode != 0:
            _docker("pull", "--quiet", ref, what=f"pull {ref}")
        image_id = _docker("image", "inspect", "--format", "{{.Id}}", ref,
                           what=f"inspect {ref}").strip()
        _docker("tag", ref, name, what=f"tag {ref} as {name}")
        tagged = _docker("image", "inspect", "--format", "{{.Id}}", name,
                         what=f"inspect {name}").strip()
        if tagged != image_id:
            raise ToolError(f"{name} is {tagged}, not the image of {ref} ({image_id})",
                            hint="remove the stale tag (docker rmi) and export again")
        done.append({"name": name, "ref": ref, "id": image_id})
    return done


def remove_from_docker(names: Iterable[str]) -> None:
    """Untag images (tests clean up with this); a missing tag is not an error."""
    for name in sorted(set(names)):
        with contextlib.suppress(ToolError):
            run(["docker", "rmi", name], what=f"untag {name}", check=False, timeout=120)
