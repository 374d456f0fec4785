"""`gen build`: hermetic image builds, normalized, cached by input hash, pushed by digest.

For each task:
1. The *input key* is computed without building: the sha256 of every file of the build context
   (the rendered `Dockerfile`, `apt.sha256`, `requirements.txt`, `files/`), the sha256 of every
   locked artifact staged into `vendor/` (from the lockfiles: debs, wheels, source), the
   platform, SOURCE_DATE_EPOCH, the engine and its version, and the normalizer version. The
   base image digest is in the Dockerfile's `FROM`. A key already in `.gen/build/cache/` is a
   cache hit: nothing is built. Otherwise, when pushing to a registry, the registry is the
   shared cache: an image tagged `<registry>/<task id>:build-<key hex>` (pushed by any machine
   that built that key) is pulled into the local OCI layout, each blob verified, instead of
   being built.
2. The context is staged into a temp dir: the rendered files plus `vendor/` copied from the
   content-addressed store (each verified by sha256), modes fixed, mtimes set to the epoch.
   Tests and the solution are never part of it.
3. The engine builds with the network off; the result is exported as an OCI layout.
4. The image is normalized (`generator.image.normalize`); its manifest digest is the identity.
5. It is pushed to `<registry>/<task id>:build-<key hex>` with its digest preserved, and
   recorded in `.gen/build/images.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state as state_paths
from generator.core.cas import Store, default_store, sha256_file
from generator.core.errors import InputError, ToolError
from generator.core.fsutil import atomic_write
from generator.core.layout import in_build_context
from generator.image import registry
from generator.image.engines.base import BuildRequest, Engine
from generator.image.engines.select import get_engine
from generator.image.images import BuiltImage, load_images, save_images
from generator.image.normalize import (
    NORMALIZER_VERSION,
    KnownLayer,
    NormalizeStats,
    normalize_image,
)
from generator.image.oci import Descriptor, Layout, platform_str
from generator.lock.fetch import artifact_names
from generator.lock.lockset import LockSet, read_lockset
from generator.spec.config import load_dataset_config
from generator.spec.model import Project, SweTask, Task
from generator.spec.project import load_project, select_tasks

__all__ = ["BuildOutcome", "Conditions", "base_refs", "build_project", "build_task_image",
           "cache_record_path", "cache_tag", "input_key", "project_engine", "require_base",
           "stage_context", "task_key"]

CACHE_DIR = state_paths.BUILD_CACHE
OCI_DIR = state_paths.BUILD_OCI


@dataclass(frozen=True)
class Conditions:
    """How a build's surroundings are varied (verify-reproducible builds twice, differently)."""

    reverse_order: bool = False  # write the context's files in reverse order
    umask: int | None = None
    env: dict[str, str] = field(default_factory=dict)  # TZ, LANG ... of the engine process
    isolated: bool = False  # no storage / cache shared with any other build

    def describe(self) -> dict[str, Any]:
        return {"reverse_file_order": self.reverse_order,
                "umask": None if self.umask is None else oct(self.umask),
                "env": dict(self.env), "isolated_storage": self.isolated}


@dataclass
class BuildOutcome:
    task: str
    image: BuiltImage
    cached: bool
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)
    cache: str | None = None  # where a cached image came from: "local" or "registry"
    warning: str | None = None  # e.g. a registry cache entry that could not be used


@dataclass(frozen=True)
class Vendored:
    path: str  # relative to the context: vendor/debs/x.deb
    sha256: str  # hex


def vendored_files(task: Task, locks: LockSet, names: dict[str, str],
                   store: Store | None = None) -> list[Vendored]:
    """What `vendor/` holds for a task, from its locks (no network)."""
    out: list[Vendored] = []
    apt = locks.apt(task.id) if task.environment.apt else None
    if apt is not None:
        out += [Vendored(f"vendor/debs/{p.filename}", p.sha256) for p in apt.packages]
    py = locks.python(task.id) if task.environment.python else None
    if py is not None:
        for pin in py.pins:
            have = [h.split(":", 1)[1] for h in pin.hashes
                    if h.split(":", 1)[1] in names and names[h.split(":", 1)[1]].endswith(".whl")]
            if not have:
                raise InputError(f"task '{task.id}': no fetched wheel for "
                                 f"{pin.name}=={pin.version}",
                                 file=f"lockfiles/tasks/{task.id}/requirements.txt",
                                 field=pin.name, hint="run `gen fetch`")
            out.append(Vendored(f"vendor/wheels/{names[have[0]]}", have[0]))
    if isinstance(task, SweTask):
        src = locks.source(task.id)
        if src is not None:
            out.append(Vendored(f"vendor/source/{src.filename}", src.sha256))
    return sorted(out, key=lambda v: v.path)


def _context_files(task_dir: Path) -> list[Path]:
    files = []
    for p in sorted(task_dir.rglob("*")):
        rel = p.relative_to(task_dir)
        if not in_build_context(rel.as_posix()) or p.is_dir():
            continue
        files.append(p)
    return files


def input_key(task_dir: Path, vendored: Sequence[Vendored], *, platform: str, epoch: int,
              engine: str) -> str:
    """The build's input key. It names the task too: each task's image is recorded, tagged
    and pushed under its own name, so two tasks whose build contexts happen to be identical
    never share (and race for) one cache entry."""
    h = hashlib.sha256()
    h.update(f"gen-build-key/2\ntask {task_dir.name}\nnormalizer {NORMALIZER_VERSION}\n"
             f"engine {engine}\nplatform {platform}\nepoch {epoch}\n".encode())
    for p in _context_files(task_dir):
        rel = p.relative_to(task_dir).as_posix()
        mode = "755" if os.access(p, os.X_OK) else "644"
        h.update(f"file {rel} {mode} {sha256_file(p)}\n".encode())
    for v in vendored:
        h.update(f"vendor {v.path} {v.sha256}\n".encode())
    return "sha256:" + h.hexdigest()


def task_key(project: Project, task: Task, vendored: Sequence[Vendored], engine: str) -> str:
    """The input key of `task` as rendered now in the project's dataset/, for `engine` (what
    gen build records, verify-reproducible and gen release recompute)."""
    cfg = project.config
    return input_key(cfg.path / "dataset" / task.id, vendored, platform=cfg.platforms[0],
                     epoch=cfg.source_date_epoch, engine=engine)


def stage_context(task_dir: Path, vendored: Sequence[Vendored], store: Store, dest: Path, *,
                  epoch: int, reverse_order: bool = False) -> None:
    """Copy the build context into `dest` (files verified, modes fixed, mtimes = epoch)."""
    jobs: list[tuple[Path, Path, int, str | None]] = []
    for p in _context_files(task_dir):
        mode = 0o755 if os.access(p, os.X_OK) else 0o644
        jobs.append((p, dest / p.relative_to(task_dir), mode, None))
    for v in vendored:
        if not store.has(v.sha256, verify=False):
            raise ToolError(f"{v.path} (sha256 {v.sha256[:12]}) is not in the store {store.root}",
                            hint="run `gen fetch`")
        jobs.append((store.path(v.sha256), dest / v.path, 0o644, v.sha256))
    if reverse_order:
        jobs.reverse()
    for src, dst, mode, want in jobs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            while chunk := fi.read(1 << 20):
                h.update(chunk)
                fo.write(chunk)
        if want is not None and h.hexdigest() != want:
            raise ToolError(f"{dst.relative_to(dest)} in the store does not hash to {want[:12]}",
                            hint="the store is corrupted: delete it and run `gen fetch`")
        os.chmod(dst, mode)
    for d in sorted({p for p in dest.rglob("*") if p.is_dir()} | {dest}, reverse=True):
        os.chmod(d, 0o755)
    for p in [*dest.rglob("*"), dest]:
        os.utime(p, (epoch, epoch), follow_symlinks=False)


# --------------------------------------------------------------------------------------
# The locked base: in the registry before anything is built on it
# --------------------------------------------------------------------------------------

_BASES_PRESENT: set[str] = set()  # pinned bases the registry was seen to hold (immutable)
_BASES_LOCK = threading.Lock()


def base_refs(dockerfile: Path) -> list[str]:
    """The digest-pinned images a Dockerfile's FROM lines name (`FROM [--flag...] image
    [AS name]`), in order; a FROM of an earlier stage or of an unpinned image is no base
    gen checks."""
    refs: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        image = next((w for w in words[1:] if not w.startswith("--")), None)
        if image is not None and "@sha256:" in image and image not in refs:
            refs.append(image)
    return refs


def _missing_base_hint(project: Project, locks: LockSet, ref: str) -> str:
    """How to put the locked base `ref` (repository@digest) back: `gen base build` for a base
    gen builds (the default one, or `--ref TAG` for another declared base)."""
    cfg = project.config
    tags = [p.ref for p in locks.images.pins if p.pinned() == ref]
    for tag in tags:
        if tag == cfg.defaults.base_image:
            return "gen base build"
        if cfg.base(tag) is not None:
            return f"gen base build --ref {tag}"
    return (f"push {tags[0] if tags else ref} to the registry again, or re-pin it: "
            "gen lock --update")


def require_base(project: Project, task: Task, locks: LockSet) -> None:
    """Fail with one line when the base a task's rendered Dockerfile is built FROM (its
    images.lock pin) is not in the registry: otherwise the engine would fail on it, after
    a wall of its own warnings. Asked once per base and process."""
    dockerfile = project.config.path / "dataset" / task.id / "Dockerfile"
    if not dockerfile.is_file():
        return  # build_task_image says what is missing
    for ref in base_refs(dockerfile):
        with _BASES_LOCK:
            if ref in _BASES_PRESENT:
                continue
            found = registry.find_manifest(ref)
            if found is None:
                raise ToolError(f"the locked base {ref} is not in the registry",
                                hint=_missing_base_hint(project, locks, ref))
            _BASES_PRESENT.add(ref)


# --------------------------------------------------------------------------------------
# The base image's layers: already normalized, reused as they are
# --------------------------------------------------------------------------------------

_KNOWN: dict[tuple[str, Path], list[KnownLayer]] = {}  # (base ref, store root) -> layers
_KNOWN_LOCK = threading.Lock()  # `gen build -j N`: one thread fetches a base, the others wait


def known_base_layers(dockerfile: Path, store: Store) -> list[KnownLayer]:
    """Layers of the FROM image (fetched once into the store, verified)."""
    ref = next((ln.split()[1] for ln in dockerfile.read_text().splitlines()
                if ln.startswith("FROM ")), None)
    if ref is None or "@sha256:" not in ref:
        return []
    with _KNOWN_LOCK:
        key = (ref, store.root)
        if key not in _KNOWN:
            _KNOWN[key] = _fetch_base_layers(ref, store)
        return _KNOWN[key]


def _fetch_base_layers(ref: str, store: Store) -> list[KnownLayer]:
    parsed = registry.parse_ref(ref)
    assert parsed.digest is not None
    _, _, manifest = registry.get_manifest(parsed, parsed.digest)
    cfg_hex = manifest["config"]["digest"].split(":", 1)[1]
    if not store.has(cfg_hex):
        registry.fetch_blob(ref, manifest["config"]["digest"], store.root / "sha256" / cfg_hex)
    config = json.loads(store.path(cfg_hex).read_bytes())
    out = []
    for desc, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        hexd = desc["digest"].split(":", 1)[1]
        if not store.has(hexd, verify=False):
            (store.root / "sha256").mkdir(parents=True, exist_ok=True)
            registry.fetch_blob(ref, desc["digest"], store.root / "sha256" / hexd)
        out.append(KnownLayer(diff_id, Descriptor(desc["mediaType"], desc["digest"],
                                                  int(desc["size"])), store.path(hexd)))
    return out


# --------------------------------------------------------------------------------------
# One build
# --------------------------------------------------------------------------------------


def build_task_image(project: Project, task: Task, engine: Engine, *,
                     out_layout: Path, work: Path, store: Store, names: dict[str, str],
                     locks: LockSet, conditions: Conditions = Conditions(),
                     vendored: Sequence[Vendored] | None = None) -> \
        tuple[Descriptor, NormalizeStats]:
    """Stage, build, export and normalize one task; returns (descriptor, stats)."""
    cfg = project.config
    task_dir = cfg.path / "dataset" / task.id
    if not (task_dir / "Dockerfile").is_file():
        raise InputError(f"task '{task.id}' is not rendered (no dataset/{task.id}/Dockerfile)",
                         file=f"dataset/{task.id}", hint="run `gen render`")
    require_base(project, task, locks)
    if vendored is None:
        vendored = vendored_files(task, locks, names, store)
    ctx = work / "context"
    old_umask = os.umask(conditions.umask) if conditions.umask is not None else None
    try:
        stage_context(task_dir, vendored, store, ctx, epoch=cfg.source_date_epoch,
                      reverse_order=conditions.reverse_order)
    finally:
        if old_umask is not None:
            os.umask(old_umask)
    raw = work / "raw"
    engine.build(BuildRequest(context=ctx, out_layout=raw, ref_name="image",
                              epoch=cfg.source_date_epoch, platform=cfg.platforms[0],
                              isolated=conditions.isolated, env=dict(conditions.env),
                              umask=conditions.umask))
    known = known_base_layers(ctx / "Dockerfile", store)
    image = Layout.open(raw).image("image")
    desc, stats = normalize_image(image, Layout.create(out_layout), epoch=cfg.source_date_epoch,
                                  ref_name=task.id, known=known)
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(ctx, ignore_errors=True)
    return desc, stats


def cache_record_path(key: str) -> Path:
    """Where the build cache record of input key `key` (sha256:<hex>) lives in a project."""
    return CACHE_DIR / f"{key.split(':', 1)[1]}.json"


def _cache_record(project_dir: Path, key: str) -> dict[str, Any] | None:
    path = project_dir / cache_record_path(key)
    try:
        rec: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    layout = project_dir / rec.get("layout", "")
    if not (layout / "blobs" / "sha256" / rec["digest"].split(":", 1)[1]).is_file():
        return None
    return rec


def cache_tag(key: str) -> str:
    """The registry tag an image built for input key `key` is pushed under."""
    return "build-" + key.split(":", 1)[1]


def _pull_cached(root: Path, state: Path, task: Task, key: str, repository: str,
                 platform: str, engine_id: str, store: Store) -> dict[str, Any] | None:
    """The image another machine built for this key, from the registry into the local OCI
    layout (every blob verified by sha256; the base's layers linked from the store); its
    cache record, or None when there is none."""
    hexkey = key.split(":", 1)[1]
    src = f"{repository}:{cache_tag(key)}"
    layout_rel = (OCI_DIR / hexkey).as_posix()
    with tempfile.TemporaryDirectory(prefix=f"pull-{task.id}-", dir=state) as tmp:
        found = registry.find_manifest(src)
        if found is None:
            return None
        base = known_base_layers(root / "dataset" / task.id / "Dockerfile", store)
        desc = registry.pull_found(src, found, Path(tmp) / "oci", task.id,
                                   have={k.descriptor.digest: k.path for k in base})
        got = platform_str(desc.platform)
        if got != platform:
            raise ToolError(f"{src} is a {got} image, but its tag is the input key of a "
                            f"{platform} build", hint="delete that tag from the registry (it "
                            "was not pushed by `gen build`), or build with --no-registry-cache")
        layout = root / layout_rel
        if layout.exists():
            shutil.rmtree(layout)
        layout.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "oci", layout)
    return {"task": task.id, "key": key, "digest": desc.digest, "layout": layout_rel,
            "engine": engine_id, "platform": platform, "normalize": {}, "pushed": [src],
            "pulled_from": f"{src}@{desc.digest}"}


def project_engine(project_dir: Path, name: str | None = None) -> Engine:
    """The engine `name` (auto or one of ENGINES), else gen.yaml's `engine` (default auto), its
    storage in the project's build state: what `gen build` and `verify-reproducible` use."""
    root = Path(project_dir).resolve()
    return get_engine(name or load_dataset_config(root).engine, root / state_paths.BUILD)


def build_project(project_dir: Path, *, engine: Engine, only: Sequence[str] | None = None,
                  jobs: int = 1, push: bool = True,
                  rebuild: bool = False, registry_cache: bool = True,
                  store: Store | None = None,
                  progress: Callable[[int], None] | None = None) -> tuple[str, list[BuildOutcome]]:
    """Build every (or the named) task with `engine` (`project_engine` makes the one the CLI
    uses); returns (engine id, outcomes).

    An unchanged input key is a cache hit, first in `.gen/build/cache/`, then (when pushing
    and `registry_cache`) in the registry, under the tag `build-<key hex>`. `rebuild` skips
    both.
    """
    project = load_project(Path(project_dir))
    root = project.root
    tasks = select_tasks(project, only)
    store = store or default_store(root)
    locks = read_lockset(root)
    names = artifact_names(root)
    state = root / state_paths.BUILD
    state.mkdir(parents=True, exist_ok=True)
    engine_id = engine.version()
    repo_base = project.config.registry
    images = load_images(root)
    outcomes: list[BuildOutcome] = []

    def one(task: Task) -> BuildOutcome:
        t0 = time.perf_counter()
        vendored = vendored_files(task, locks, names, store)
        key = task_key(project, task, vendored, engine_id)
        hexkey = key.split(":", 1)[1]
        repository = f"{repo_base}/{task.id}" if repo_base else f"localhost/gen/{task.id}"
        rec = None if rebuild else _cache_record(root, key)
        source = "local" if rec is not None else None
        warning = None
        if rec is None:  # pulled or built on it: the base must be there
            require_base(project, task, locks)
        if rec is None and not rebuild and registry_cache and push and repo_base:
            try:
                rec = _pull_cached(root, state, task, key, repository,
                                   project.config.platforms[0], engine_id, store)
            except ToolError as exc:  # a bad entry is a miss: built here, its tag replaced
                warning = (f"the registry cache entry {repository}:{cache_tag(key)} was not "
                           f"used ({exc.one_line()}); built here, and the push replaces it")
            source = "registry" if rec is not None else None
        cached = rec is not None
        if rec is None:
            layout_rel = (OCI_DIR / hexkey).as_posix()
            layout = root / layout_rel
            with tempfile.TemporaryDirectory(prefix=f"build-{task.id}-", dir=state) as tmp:
                tmp_layout = Path(tmp) / "oci"
                desc, stats = build_task_image(project, task, engine,
                                               out_layout=tmp_layout, work=Path(tmp),
                                               store=store, names=names, locks=locks,
                                               vendored=vendored)
                if layout.exists():
                    shutil.rmtree(layout)
                layout.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_layout, layout)
            rec = {"task": task.id, "key": key, "digest": desc.digest, "layout": layout_rel,
                   "engine": engine_id, "platform": project.config.platforms[0],
                   "normalize": stats.summary(), "pushed": []}
        dest = f"{repository}:{cache_tag(key)}"
        if push and repo_base and dest not in rec.get("pushed", []):
            registry.push_layout(root / rec["layout"], task.id, dest, all_platforms=False)
            got = registry.resolve(dest)
            if got.digest != rec["digest"]:
                raise ToolError(f"the registry serves {got.digest} for {dest}, not the pushed "
                                f"{rec['digest']}", hint="check what else pushes to it")
            rec["pushed"] = sorted({*rec.get("pushed", []), dest})
        if source != "local" or push:
            atomic_write(root / cache_record_path(key),
                         (json.dumps(rec, indent=2, sort_keys=True) + "\n").encode())
        image = BuiltImage(task=task.id, ref=f"{repository}@{rec['digest']}",
                           repository=repository, digest=rec["digest"],
                           platform=rec["platform"], key=key, engine=rec["engine"],
                           layout=rec["layout"])
        if progress:
            progress(1)
        return BuildOutcome(task.id, image, cached, time.perf_counter() - t0,
                            rec.get("normalize", {}), source, warning)

    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, task) for task in tasks]
        for future in futures:
            try:
                outcome = future.result()
            except BaseException as exc:  # the others still finish and are recorded
                errors.append(exc)
                continue
            outcomes.append(outcome)
            images[outcome.task] = outcome.image
    ids = {t.id for t in project.tasks}
    save_images(root, {k: v for k, v in images.items() if k in ids})
    if errors:
        raise errors[0]
    return engine_id, outcomes
