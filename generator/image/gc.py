"""`gen gc`: delete what no current image, lock or run needs from a project's `.gen/`.

What is garbage (everything else is kept):
- **image layouts** `.gen/build/oci/<key>/` and **cache records** `.gen/build/cache/<key>.json`
  of input keys that `.gen/build/images.json` no longer names (a task rebuilt after a change
  leaves its old image behind; a removed task leaves all of its);
- **temporary directories** an interrupted `gen build`, `gen verify-reproducible` or
  `gen render` left behind (`build-*`, `pull-*`, `buildah-*` storage of isolated builds,
  `.layout-*`, `.gen/verify/.tmp-*`, render staging dirs), and temp files of atomic writes;
- **buildah's shared storage** `.gen/build/buildah`: base images no lock in
  `lockfiles/images.lock` pins any more (non-isolated builds pull their base there), and
  working containers a killed build left (a finished build removes its own);
- with `store=True`, **store files** (`.gen/cas`) that no lockfile, base image or kept image
  layout references, and **base images** in `.gen/base/` that `lockfiles/images.lock` no
  longer pins (their rootfs tar in the store goes with them).

It runs under the project's exclusive lock: every other `gen` command that works on the project
holds it shared (see `generator.core.fsutil.project_lock`), so nothing a running command is writing
is ever taken for garbage. A directory with a file system mounted below it (a killed buildah
may leave an overlay mounted) is never deleted; it is reported instead. Freed bytes count the
files whose last link goes (the base's layers are hard links shared by the store and layouts).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.cas import default_store
from generator.core.errors import GenError, InputError, ToolError, UsageError
from generator.core.fsutil import mount_points
from generator.image.engines.buildah import Buildah
from generator.image.images import load_images
from generator.lock.lockset import read_lockset

__all__ = ["GcResult", "Removal", "collect_garbage"]

BUILD, VERIFY, BASE = state.BUILD, state.VERIFY, state.BASE
# temp dirs and files gen's commands create under .gen/build (see build, engines, base)
_BUILD_TEMP_PREFIXES = ("build-", "pull-", "buildah-", ".layout-", ".export-", ".norm-")
_TMP_MARK = ".gen-tmp-"


@dataclass(frozen=True)
class Removal:
    kind: str  # image layout | cache record | leftover | store file | base image |
    #            buildah image | buildah container
    path: str  # relative to the project (absolute for a store outside it); an engine's
    #            image or container by name
    bytes: int  # what deleting it frees (files whose last link it held)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "bytes": self.bytes}


@dataclass
class GcResult:
    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    kept: dict[str, int] = field(default_factory=dict)

    @property
    def freed(self) -> int:
        return sum(r.bytes for r in self.removed)

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.removed:
            out[r.kind] = out.get(r.kind, 0) + 1
        return out


class _Plan:
    """What to delete, with each inode counted once (hard links share one)."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.items: list[tuple[str, Path]] = []
        self.skipped: list[tuple[str, str]] = []
        self.mounts = mount_points()
        self.links: dict[tuple[int, int], list[int]] = {}  # inode -> [size, nlink, removed]
        self.inodes: list[list[tuple[int, int]]] = []  # per item

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.project).as_posix()
        except ValueError:
            return str(path)

    def add(self, kind: str, path: Path) -> None:
        real = os.path.realpath(path)
        if any(m == real or m.startswith(real + "/") for m in self.mounts):
            self.skipped.append((self.rel(path), "a file system is mounted below it "
                                 "(unmount it, then run gen gc again)"))
            return
        inodes: list[tuple[int, int]] = []
        for p in _files(path):
            st = p.lstat()
            key = (st.st_dev, st.st_ino)
            entry = self.links.setdefault(key, [st.st_size, st.st_nlink, 0])
            entry[2] += 1
            inodes.append(key)
        self.items.append((kind, path))
        self.inodes.append(inodes)

    def removals(self) -> list[Removal]:
        out = []
        for (kind, path), inodes in zip(self.items, self.inodes, strict=True):
            freed = 0
            for key in inodes:
                size, nlink, removed = self.links[key]
                if removed >= nlink:  # every link of it goes: count it once, here
                    freed += size
                    self.links[key] = [size, nlink, -1]  # counted
            out.append(Removal(kind, self.rel(path), freed))
        return out


def _files(path: Path) -> Iterable[Path]:
    if path.is_symlink() or not path.is_dir():
        if path.exists() or path.is_symlink():
            yield path
        return
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            yield Path(dirpath) / n


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # directories without write or search permission (buildah storage) are opened up
        # first, top down, so rmtree can list and empty every one; links are not followed
        os.chmod(path, 0o700)
        for dirpath, dirs, _files in os.walk(path):
            for d in dirs:
                sub = os.path.join(dirpath, d)
                if not os.path.islink(sub):
                    os.chmod(sub, 0o700)
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _listdir(d: Path) -> list[Path]:
    try:
        return sorted(d.iterdir())
    except FileNotFoundError:
        return []


def _kept_layouts(project: Path) -> tuple[set[str], set[str]]:
    """(layout dirs images.json names, relative; the input keys' hex) of the current images."""
    try:
        images = load_images(project)
    except InputError as exc:
        raise InputError(f"cannot tell which images are current: {exc.message}",
                         file=state.IMAGES.as_posix(), hint="rebuild it with `gen build`, or "
                         "delete .gen/build to start over") from exc
    layouts = {Path(i.layout).as_posix() for i in images.values() if i.layout}
    keys = {i.key.split(":", 1)[1] for i in images.values() if i.key}
    return layouts, keys


def _blob_digests(layout: Path) -> set[str]:
    d = layout / "blobs" / "sha256"
    return {p.name for p in _listdir(d)}


def collect_garbage(project: Path, *, dry_run: bool = False, store: bool = False) -> GcResult:
    """Find (and unless `dry_run`, delete) the garbage under the project's `.gen/`.

    The caller holds the project's exclusive lock (`gen gc` does).
    """
    project = Path(project).resolve()
    if not (project / "gen.yaml").is_file():
        raise InputError("not a gen project (no gen.yaml)", file=str(project / "gen.yaml"),
                         hint="pass --project DIR of a dataset project")
    plan = _Plan(project)
    build = project / BUILD
    layouts, keys = _kept_layouts(project)
    kept_layouts = 0
    for d in _listdir(project / state.BUILD_OCI):
        if d.name.startswith(".") or _TMP_MARK in d.name:
            plan.add("leftover", d)
        elif (state.BUILD_OCI / d.name).as_posix() in layouts:
            kept_layouts += 1
        else:
            plan.add("image layout", d)
    for f in _listdir(project / state.BUILD_CACHE):
        if f.suffix == ".json" and f.stem in keys:
            continue
        plan.add("leftover" if _TMP_MARK in f.name else "cache record", f)
    for d in _listdir(build):
        if d.name.startswith(_BUILD_TEMP_PREFIXES) or _TMP_MARK in d.name:
            plan.add("leftover", d)
    for d in _listdir(project / VERIFY):
        if d.name.startswith(state.VERIFY_TEMP_PREFIX):
            plan.add("leftover", d)
    # render's staging dirs: inside an existing dataset/, or beside a first one
    staged = state.RENDER_STAGING
    for staging in (project / "dataset" / staged, project / f".dataset{staged}"):
        if staging.exists():
            plan.add("leftover", staging)
    result = GcResult(dry_run=dry_run, kept={"image layouts": kept_layouts})
    if store:
        _store_garbage(project, plan, layouts, result)
    result.removed = plan.removals()
    result.skipped = plan.skipped
    engine_removed = _engine_garbage(project, result, dry_run)
    if not dry_run:
        for _kind, path in plan.items:
            _delete(path)
    result.removed += engine_removed
    return result


def _engine_garbage(project: Path, result: GcResult, dry_run: bool) -> list[Removal]:
    """Unpinned base images and leftover working containers in buildah's shared storage
    (removed through the engine: its storage is not plain files)."""
    buildah = Buildah.in_state(project / BUILD)
    if not buildah.has_storage():
        return []
    where = (BUILD / Buildah.STORAGE_DIR).as_posix()
    if buildah.available() is not None:
        result.skipped.append((where, "buildah is not installed, so its storage was not "
                               "pruned (gen infra install)"))
        return []
    try:
        pins = read_lockset(project).images.pins
    except GenError as exc:
        result.skipped.append((where, f"cannot tell which base images are pinned "
                               f"({exc.message}); fix the lockfiles, then run gen gc again"))
        return []
    pinned = {d for pin in pins for d in (pin.index_digest, pin.manifest_digest)}
    removed: list[Removal] = []
    try:
        containers = buildah.stored_containers()
        removed += [Removal("buildah container", name, 0) for name in containers]
        unpinned = []
        kept = 0
        for image in buildah.stored_images():
            digests = {image.digest} | {n.rsplit("@", 1)[1] for n in image.names if "@" in n}
            if digests & pinned:
                kept += 1
            else:
                unpinned.append(image.id)
                removed.append(Removal("buildah image", image.names[0] if image.names
                                       else image.id, image.size))
        result.kept["buildah images"] = kept
        if not dry_run and (containers or unpinned):
            buildah.remove_stored(unpinned, containers)
    except ToolError as exc:
        # the files gc found are still deleted; only the engine's storage is left as it is
        result.skipped.append((where, f"buildah failed, so its storage was not pruned: "
                               f"{exc.message} (if another storage driver made it, set "
                               "GEN_BUILDAH_DRIVER to that one)"))
        return []
    return removed


def _store_garbage(project: Path, plan: _Plan, layouts: set[str], result: GcResult) -> None:
    cas = default_store(project)
    own = project / state.CAS
    if cas.root.resolve() != own.resolve():
        raise UsageError(f"the store {cas.root} is not this project's own (GEN_CAS points "
                         "there, so other projects may share it): gen gc --store only prunes "
                         f"{own}", hint="run gen gc without --store, or unset GEN_CAS")
    lockset = read_lockset(project)
    pinned = {d for pin in lockset.images.pins for d in (pin.index_digest, pin.manifest_digest)}
    keep: set[str] = set()
    bases_kept = 0
    for rec_file in _listdir(project / BASE):
        if rec_file.suffix != ".json":
            continue
        try:
            rec = json.loads(rec_file.read_text())
        except ValueError:
            rec = {}
        layout = rec_file.with_suffix("")
        if {rec.get("index_digest"), rec.get("manifest_digest")} & pinned:
            bases_kept += 1
            if rec.get("rootfs_sha256"):
                keep.add(rec["rootfs_sha256"])
            keep |= _blob_digests(layout)
        else:
            plan.add("base image", rec_file)
            if layout.is_dir():
                plan.add("base image", layout)
    for rel in layouts:
        keep |= _blob_digests(project / rel)
    for task_dir in _listdir(project / "lockfiles" / "tasks"):
        task = task_dir.name
        apt = lockset.apt(task)
        if apt is not None:
            keep.update(p.sha256 for p in apt.packages)
        py = lockset.python(task)
        if py is not None:
            keep.update(h.split(":", 1)[1] for pin in py.pins for h in pin.hashes)
        src = lockset.source(task)
        if src is not None:
            keep.add(src.sha256)
    kept = 0
    for f in _listdir(cas.root / "sha256"):
        if f.name in keep:
            kept += 1
        else:
            plan.add("leftover" if f.name.startswith(".") else "store file", f)  # temp files
    result.kept.update({"store files": kept, "base images": bases_kept})
