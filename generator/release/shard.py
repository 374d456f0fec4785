"""Sharding a dataset across machines (CI matrix jobs, indexed batch jobs), and merging back.

`--shard I/N` (on fetch, build, verify-reproducible, validate) takes every N-th task of the
sorted task ids, starting with the I-th: the shards are disjoint, cover every task, and differ
in size by at most one. Each shard job keeps its `.gen/` (images.json, OCI layouts, reports);
`gen merge-shards DIR...` checks the shards against the project and against each other and
writes one `.gen/build/images.json`, one validate report and one verify report, as if a single
machine had done all the work:

- every task of the project has exactly one built image (the same digest if two shards built
  it); a task the project does not have is refused (the shards ran on another commit), and so
  is a record whose layout is not a dir of `.gen/build/oci/` (where gen build writes them);
- the validate reports ran under the same conditions (engine, runs, seed, test environment)
  and together validated every task; verify reports under the same conditions;
- OCI layouts the records name are copied in when the shard dirs hold them (validate's image
  checks read them; the release needs only the digests), and so is the build cache record of
  each merged image (what it was built or pulled from: the release's notes read it, and with
  the layout it makes the image a local cache hit here).

Nothing is written unless every check passes; each file is replaced atomically.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.errors import CheckFailed, InputError, UsageError
from generator.core.fsutil import atomic_write
from generator.image.build import cache_record_path
from generator.image.images import BuiltImage, parse_images, save_images
from generator.lock.fetch import artifact_names, save_names
from generator.lock.lockfiles import DIGEST_RE
from generator.spec.project import discover_tasks
from generator.validate.strength_report import text_lines

__all__ = ["MergeResult", "Shard", "merge_shards", "parse_shard", "shard_tasks"]

_SHARD_RE = re.compile(r"([0-9]+)/([0-9]+)\Z")
# where each stage leaves its report, relative to `.gen/`
REPORTS = {"validate": state.VALIDATE_REPORT.relative_to(state.STATE),
           "verify": state.VERIFY_REPORT.relative_to(state.STATE),
           "strength": state.VALIDATE_STRENGTH.relative_to(state.STATE)}
# what must be the same in every shard's report for the merged one to mean anything
SAME = {"validate": ("engine", "runs", "seed", "env", "network", "derive"),
        "verify": ("conditions",), "strength": ("seed", "max_mutants", "thresholds")}


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def select(self, task_ids: Sequence[str]) -> list[str]:
        return sorted(task_ids)[self.index - 1::self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    m = _SHARD_RE.match(text.strip())
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise UsageError(f"--shard '{text}' is not I/N with 1 <= I <= N",
                         hint="write e.g. --shard 1/4 (the first of four shards)")
    return Shard(int(m.group(1)), int(m.group(2)))


def shard_tasks(project: Path, shard: Shard | None, only: Sequence[str]) -> list[str] | None:
    """The task ids a command should work on: `only` (None = all) without a shard, else the
    shard's part of every task. A shard with no tasks gives []."""
    if shard is None:
        return list(only) or None
    if only:
        raise UsageError("--shard selects the tasks itself: name no TASK with it",
                         hint="drop the task ids, or drop --shard")
    return shard.select([p.name for p in discover_tasks(Path(project))])


@dataclass
class MergeResult:
    images: int
    reports: dict[str, int]  # kind -> tasks in the merged report
    layouts_copied: int
    layouts_missing: list[str] = field(default_factory=list)  # tasks: not in any shard dir
    records_copied: int = 0  # build cache records (.gen/build/cache/) of merged images written
    shards: list[dict[str, Any]] = field(default_factory=list)


def _gen_dir(shard: Path) -> Path:
    """A shard job's `.gen/`, given it or the project dir holding it."""
    if (shard / state.IMAGES).is_file():
        return shard / state.STATE
    if (shard / "build" / "images.json").is_file():
        return shard
    raise InputError(f"{shard} holds no build/images.json", file=str(shard),
                     hint="pass the .gen/ directory (or the project) a `gen build --shard` "
                     "job left")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", file=str(path),
                         hint="copy the file from the shard job again") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object", file=str(path),
                         hint="copy the file from the shard job again")
    return data


def _merge_reports(kind: str, reports: list[tuple[Path, dict[str, Any]]],
                   problems: list[str]) -> dict[str, Any]:
    first_path, first = reports[0]
    tasks: dict[str, Any] = {}
    owner: dict[str, Path] = {}
    for path, rep in reports:
        for key in SAME[kind]:
            if rep.get(key) != first.get(key):
                problems.append(f"{kind}: '{key}' differs between shards: {first.get(key)!r} "
                                f"in {first_path}, {rep.get(key)!r} in {path} (run every shard "
                                "with the same options)")
        for task, verdict in (rep.get("tasks") or {}).items():
            if task in tasks:
                problems.append(f"{kind}: task {task} is in {owner[task]} and in {path} "
                                "(each task belongs to one shard)")
            tasks[task] = verdict
            owner[task] = path
    merged: dict[str, Any] = {k: first.get(k) for k in SAME[kind]}
    merged["ok"] = all(bool(rep.get("ok")) for _, rep in reports)
    merged["seconds"] = max(float(rep.get("seconds") or 0) for _, rep in reports)
    merged["tasks"] = {t: tasks[t] for t in sorted(tasks)}
    merged["shards"] = [{"from": str(p), "tasks": len(r.get("tasks") or {}),
                         "seconds": r.get("seconds")} for p, r in reports]
    if kind == "strength":
        merged["skipped"] = {t: why for _, r in reports for t, why in
                             sorted((r.get("skipped") or {}).items())}
        merged["ok"] = merged["ok"] and not merged["skipped"]
    if kind == "validate":
        merged["session"] = ",".join(sorted({str(r.get("session")) for _, r in reports}))
        merged["leftover_containers"] = sorted(
            {c for _, r in reports for c in r.get("leftover_containers") or []})
        merged["summary"] = {
            "tasks": len(tasks),
            "valid": sum(1 for v in tasks.values() if v.get("ok")),
            "failed": sum(1 for v in tasks.values() if not v.get("ok")),
            "flaky": sorted(t for t, v in tasks.items() if v.get("flaky"))}
    return merged


def _own_layout(layout: str) -> bool:
    """Is `layout` where gen build puts an image layout (a dir of .gen/build/oci/)? Only such
    a path is copied from a shard into the project: another (absolute, or with '..') could
    lead the copy out of both."""
    rel = Path(layout)
    return rel.parent == state.BUILD_OCI and rel.name not in ("", ".", "..")


def _copy_cache_record(gens: Sequence[Path], project: Path, image: BuiltImage) -> int:
    """Copy the cache record of `image` into the project from the first of the shards that
    built it which has one for its key and digest: 1 when that wrote a file, 0 when the
    project holds the same bytes already or no shard has such a record."""
    if not isinstance(image.key, str) or not DIGEST_RE.match(image.key):
        return 0  # no key a build writes (a hand-edited images.json): no path made of it
    rel = cache_record_path(image.key)
    dest = project / rel
    for gen in gens:
        src = gen / rel.relative_to(state.STATE)
        try:
            data = src.read_bytes()
            rec = json.loads(data)
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or rec.get("digest") != image.digest \
                or rec.get("key") != image.key:
            continue  # another build's record: not this image's
        if dest.is_file() and dest.read_bytes() == data:
            return 0
        atomic_write(dest, data)
        return 1
    return 0


def merge_shards(project: Path, shards: Sequence[Path]) -> MergeResult:
    """Merge shard jobs' `.gen/` directories into `project`'s (see the module's doc)."""
    project = Path(project).resolve()
    if not shards:
        raise UsageError("no shard directories given", hint="gen merge-shards DIR [DIR...]")
    project_tasks = {p.name for p in discover_tasks(project)}
    problems: list[str] = []
    images: dict[str, BuiltImage] = {}
    layout_src: dict[str, Path] = {}
    built_by: dict[str, Path] = {}
    gens_of: dict[str, list[Path]] = {}  # task -> the shards' .gen/ dirs that built its image
    reports: dict[str, list[tuple[Path, dict[str, Any]]]] = {k: [] for k in REPORTS}
    result = MergeResult(images=0, reports={}, layouts_copied=0)
    # the file names of fetched artifacts (gen build and the release check need the wheels')
    names: dict[str, str] = dict(artifact_names(project))
    for shard in shards:
        gen = _gen_dir(Path(shard))
        path = gen / "build" / "images.json"
        shard_images = parse_images(_read_json(path), where=str(path))
        result.shards.append({"from": str(gen), "images": len(shard_images)})
        for task, image in shard_images.items():
            if task not in project_tasks:
                problems.append(f"{path}: task {task} is not in this project (the shard ran on "
                                "another commit?)")
                continue
            if task in images and images[task].digest != image.digest:
                problems.append(f"task {task}: {built_by[task]} built {images[task].digest}, "
                                f"{path} built {image.digest} (a build is not reproducible, "
                                "or the shards ran on different inputs)")
                continue
            if image.layout and not _own_layout(image.layout):
                problems.append(f"{path}: task {task}'s layout '{image.layout}' is not a "
                                f"directory of {state.BUILD_OCI.as_posix()}/ "
                                "(a hand-edited record? run `gen build` in that shard again)")
                continue
            images.setdefault(task, image)
            built_by.setdefault(task, path)
            gens_of.setdefault(task, []).append(gen)
            if image.layout and task not in layout_src:
                layout_src[task] = gen / Path(image.layout).relative_to(state.STATE)
        for kind, rel in REPORTS.items():
            if (gen / rel).is_file():
                reports[kind].append((gen / rel, _read_json(gen / rel)))
        shard_names = gen / state.FETCH_NAMES.relative_to(state.STATE)
        if shard_names.is_file():
            for hexd, name in _read_json(shard_names).items():
                names.setdefault(str(hexd), str(name))
    missing = sorted(project_tasks - images.keys())
    if missing:
        problems.append(f"{len(missing)} task(s) have no image in any shard: "
                        f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''} "
                        "(did every shard job finish?)")
    merged_reports: dict[str, dict[str, Any]] = {}
    for kind, found in reports.items():
        if not found:
            continue
        merged = _merge_reports(kind, found, problems)
        if kind == "validate":
            unvalidated = sorted(project_tasks - merged["tasks"].keys())
            if unvalidated:
                problems.append(f"validate: {len(unvalidated)} task(s) in no shard's report: "
                                f"{', '.join(unvalidated[:10])} (validate every shard, or none)")
        merged_reports[kind] = merged
    if problems:
        raise CheckFailed(f"cannot merge {len(shards)} shard(s): {problems[0]}"
                          + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                          problems)
    for task, image in sorted(images.items()):
        result.records_copied += _copy_cache_record(gens_of[task], project, image)
    for task, src in sorted(layout_src.items()):
        dest = project / images[task].layout
        if dest.is_dir():
            continue
        if not (src / "index.json").is_file():
            # the release needs only the digests; validating here again would need the layout
            result.layouts_missing.append(task)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".merge-tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        tmp.rename(dest)
        result.layouts_copied += 1
    save_images(project, images)
    if names:
        save_names(project, names)
    for kind, merged in merged_reports.items():
        atomic_write(project / state.STATE / REPORTS[kind],
                     (json.dumps(merged, indent=2, sort_keys=True) + "\n").encode())
        if kind == "strength":
            atomic_write(project / state.VALIDATE_STRENGTH_TEXT,
                         ("\n".join(text_lines(merged, verbose=True)) + "\n").encode())
        result.reports[kind] = len(merged["tasks"])
    result.images = len(images)
    return result
