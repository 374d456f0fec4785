"""`gen init`: scaffold a dataset project (gen.yaml, one example task, a templates/ note).

The skeleton ships inside the wheel (`generator/skeleton/`). It is written into a staging
directory, checked by the same spec loader `gen render` uses, and only then moved into place,
one top-level entry at a time; nothing that already exists is overwritten.
"""

from __future__ import annotations

import os
import shutil
import string
import time
from dataclasses import dataclass, field
from pathlib import Path

from generator.core.errors import GenError, UsageError
from generator.core.fsutil import write_new
from generator.spec.model import DATASET_FILE, TASK_ID_RE
from generator.spec.project import load_project, slug

__all__ = ["SKELETON", "InitResult", "default_name", "init_project"]

SKELETON = Path(__file__).parent.parent / "skeleton"
# what init writes at the project's top level (besides .gitignore, which it never replaces)
ENTRIES = (DATASET_FILE, "tasks", "templates")
# what would mean the directory already is (or holds part of) a dataset project
TAKEN = (*ENTRIES, "lockfiles", "dataset")
_DAY = 86_400


@dataclass
class InitResult:
    project: Path
    name: str
    source_date_epoch: int
    created: list[str] = field(default_factory=list)  # files, relative to the project
    kept: list[str] = field(default_factory=list)  # existing files left as they were


def default_name(project: Path) -> str | None:
    """A dataset name from the directory's name (lowercase, '-' for other characters)."""
    name = slug(project.resolve().name)
    return name if name and TASK_ID_RE.match(name) else None


def _check_free(project: Path) -> None:
    if project.exists() and not project.is_dir():
        raise UsageError(f"{project} exists and is not a directory",
                         hint="pass --project with a new or empty directory")
    for entry in TAKEN:
        if os.path.lexists(project / entry):
            raise UsageError(f"{project / entry} already exists: {project} already holds a "
                             "dataset project", hint="run `gen init` in a new or empty directory "
                             "(--project DIR); gen init never overwrites")


def _write_skeleton(staging: Path, name: str, epoch: int) -> None:
    for src in sorted(SKELETON.rglob("*")):
        rel = src.relative_to(SKELETON).as_posix()
        if src.is_dir() or "__pycache__" in rel:
            continue
        data = src.read_bytes()
        if rel == f"{DATASET_FILE}.in":
            rel = DATASET_FILE
            text = string.Template(data.decode()).substitute(name=name, source_date_epoch=epoch)
            data = text.encode()
        elif rel == "gitignore":
            rel = ".gitignore"
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_new(dest, data, 0o755 if rel.endswith(".sh") else 0o644)


def init_project(project: Path, *, name: str | None = None,
                 source_date_epoch: int | None = None) -> InitResult:
    """Scaffold a dataset project in `project` (created if missing)."""
    project = Path(project)
    _check_free(project)
    if name is None:
        name = default_name(project)
        if name is None:
            raise UsageError(f"cannot make a dataset name from the directory name "
                             f"'{project.resolve().name}'",
                             hint="pass --name with lowercase letters, digits, '.', '_', '-'")
    elif not TASK_ID_RE.match(name):
        raise UsageError(f"bad dataset name '{name}': must match {TASK_ID_RE.pattern}",
                         hint="pass --name with lowercase letters, digits, '.', '_', '-'")
    if source_date_epoch is None:
        source_date_epoch = int(time.time()) // _DAY * _DAY  # today, 00:00 UTC
    elif source_date_epoch < 0:
        raise UsageError(f"bad --source-date-epoch {source_date_epoch}",
                         hint="pass Unix seconds, e.g. the time of your first commit")
    created_dir = not project.exists()
    project.mkdir(parents=True, exist_ok=True)
    staging = project / f".gen-init-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    result = InitResult(project=project, name=name, source_date_epoch=source_date_epoch)
    moved: list[Path] = []
    try:
        _write_skeleton(staging, name, source_date_epoch)
        try:  # the skeleton must be a project gen accepts, whatever --name was
            load_project(staging)
        except GenError as exc:  # pragma: no cover - the tests load the skeleton
            raise UsageError(f"the scaffold does not load: {exc.one_line()}",
                             hint="report this as a bug in gen") from None
        _check_free(project)  # nothing appeared meanwhile
        for entry in (*ENTRIES, ".gitignore"):
            if entry == ".gitignore" and os.path.lexists(project / entry):
                result.kept.append(entry)
                continue
            os.rename(staging / entry, project / entry)
            moved.append(project / entry)
    except BaseException:
        # nothing half-written: take back what was already moved (none of it existed before)
        for path in moved:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if created_dir:
            shutil.rmtree(project, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for path in moved:
        if path.is_dir():
            result.created.extend(p.relative_to(project).as_posix()
                                  for p in path.rglob("*") if p.is_file())
        else:
            result.created.append(path.name)
    result.created.sort()
    return result
