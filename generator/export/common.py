"""What the three export formats share: the ExportPlan (relative path -> bytes and mode), the
export templates, the built image each task's export names, and the files of a task's rendered
dir by task."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from generator import __version__
from generator.core import state
from generator.core.errors import InputError
from generator.image.images import IMAGES_FILE, BuiltImage
from generator.lock.lockfiles import DIGEST_RE
from generator.render.context import RenderedFile
from generator.render.templates import FILE_MODE, PACKAGE_TEMPLATES, make_environment
from generator.spec.model import Task

__all__ = [
    "DIR_MODE", "ExportPlan",
]


DIR_MODE = 0o755


@dataclass
class ExportPlan:
    """Every file of an export (path relative to the export root -> bytes + mode)."""

    format: str
    files: dict[str, RenderedFile] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)  # task id -> repository@digest
    unbuilt: list[str] = field(default_factory=list)  # tasks exported with a Dockerfile build
    docker_tags: dict[str, str] = field(default_factory=dict)  # swebench name -> image ref
    unsealed: list[str] = field(default_factory=list)  # tasks whose tests are not graded sealed
    # task id -> its test-strength figures (gen validate --strength on the exported image)
    strength: dict[str, dict[str, Any]] = field(default_factory=dict)


def strength_figures(project: Path, images: Mapping[str, BuiltImage]) -> dict[str, dict[str, Any]]:
    """Per task: the figures of `.gen/validate/strength.json` measured on the image being
    exported (a task measured on another image, or not at all, gets none)."""
    try:
        report = json.loads((project / state.VALIDATE_STRENGTH).read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for tid, t in (report.get("tasks") or {}).items():
        img = images.get(tid)
        if img is None or str(t.get("image", "")).rsplit("@", 1)[-1] != img.digest:
            continue
        cov = t.get("fix_coverage")
        n = t.get("mutants") or {}
        fig: dict[str, Any] = {
            "fix_lines_covered": f"{cov['covered']}/{cov['total']}" if cov else "not measured",
            "mutants_run": int(n.get("run", 0)), "mutants_killed": int(n.get("killed", 0))
            + int(n.get("timed_out", 0)), "mutants_survived": int(n.get("survived", 0)),
            "mutants_equivalent_suspect": int(n.get("equivalent_suspect", 0)),
            "gate_passed": bool(t.get("ok")), "measured_on": img.digest,
        }
        if t.get("mutation_score") is not None:
            fig["mutation_score"] = float(t["mutation_score"])
        if cov is None and t.get("coverage_unmeasured"):
            fig["coverage_unmeasured"] = str(t["coverage_unmeasured"])
        out[tid] = fig
    return out


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
