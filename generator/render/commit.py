"""Writing a render: files are staged beside dataset/ and committed by rename, so an error anywhere
leaves the previous dataset untouched; files of tasks that no longer exist are removed, and so
are directories left empty."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from generator.core import state
from generator.core.fsutil import DIR_MODE, atomic_write
from generator.render.cache import _Cache, _tree_sigs
from generator.render.plan import RenderResult
from generator.render.workers import _TaskOutcome

__all__ = [
    "STAGING",
]


def _existing_files(out_dir: Path, task_ids: Iterable[str] | None) -> set[str]:
    """Relative paths of files currently under out_dir (all tasks, or only these)."""
    if not out_dir.is_dir():
        return set()
    found: set[str] = set()
    roots = [out_dir / t for t in task_ids] if task_ids is not None else \
        list(out_dir.iterdir())
    for root in roots:
        if root.is_dir() and not root.is_symlink():
            for dirpath, _dirs, names in os.walk(root):
                rel_dir = Path(dirpath).relative_to(out_dir).as_posix()
                for n in names:
                    found.add(f"{rel_dir}/{n}")
        elif root.exists() or root.is_symlink():
            found.add(root.relative_to(out_dir).as_posix())
    return found


STAGING = state.RENDER_STAGING


def _staging_dir(out_dir: Path) -> tuple[Path, bool]:
    """Where new task dirs are written first, and whether it becomes out_dir as a whole.

    A first render (no output directory yet) writes a sibling directory and renames it into
    place once; otherwise each new task directory is renamed from out_dir/.gen-staging.
    """
    if out_dir.exists():
        return out_dir / STAGING, False
    return out_dir.parent / f".{out_dir.name}{STAGING}", True


def _commit(project: Path, out_dir: Path, tasks: list[str], reused: set[str],
            outcomes: list[_TaskOutcome], cache: _Cache, staging: Path, whole: bool, *,
            check: bool, prune: bool) -> RenderResult:
    """Make out_dir match the outcomes: replace changed files atomically, rename staged task
    dirs into place, remove files and directories that are no longer rendered."""
    result = RenderResult(tasks=len(tasks), cached_tasks=len(reused))
    existing = _existing_files(out_dir, [o.task_id for o in outcomes if not o.new])
    if prune and out_dir.is_dir():
        wanted = set(tasks)
        with os.scandir(out_dir) as it:
            strays = sorted(e.name for e in it if e.name not in wanted and e.name != STAGING)
        for name in strays:
            existing |= _existing_files(out_dir, [name]) or {name}
    wanted_files: set[str] = set()  # in task dirs that existed (new ones hold nothing else)
    for o in outcomes:
        if o.new:
            result.written.extend(f"{o.task_id}/{p}" for p in o.paths)
            if not whole and os.path.lexists(out_dir / o.task_id):
                existing.add(o.task_id)  # a file or link where the task dir goes: replaced
            continue
        wanted_files.update(f"{o.task_id}/{p}" for p in o.paths)
        result.unchanged += o.unchanged
        for sub in sorted(o.changed):
            rel = f"{o.task_id}/{sub}"
            result.written.append(rel)
            if not check:
                rf = o.changed[sub]
                atomic_write(out_dir / rel, rf.data, rf.mode, dir_mode=DIR_MODE)
    for rel in sorted(existing):
        if rel in wanted_files or rel.partition("/")[0] in reused:
            continue
        result.removed.append(rel)
        if not check:
            target = out_dir / rel
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    if not check:
        if whole:
            if outcomes:
                os.rename(staging, out_dir)
        else:
            for o in outcomes:
                if o.new:
                    os.rename(staging / o.task_id, out_dir / o.task_id)
            shutil.rmtree(staging, ignore_errors=True)
        if result.removed:
            _remove_empty_dirs(out_dir)
        for o in outcomes:
            if o.signed is not None:
                if o.signed.layout is None and o.signed.outputs is None:
                    # an existing task dir, signed as it is now
                    o.signed.outputs = _tree_sigs(os.fspath(out_dir / o.task_id))
                cache.store(o.task_id, o.signed)
        cache.save(tasks)
    result.written.sort()
    result.removed.sort()
    return result


def _remove_empty_dirs(out_dir: Path) -> None:
    if not out_dir.is_dir():
        return
    for dirpath, _dirs, _files in os.walk(out_dir, topdown=False):
        if Path(dirpath) != out_dir and not os.listdir(dirpath):
            os.rmdir(dirpath)
