"""`gen fetch`: download every locked artifact into the content-addressed store.

What is fetched (all named by sha256 in `lockfiles/`):
- `.deb`s of each declared base's lock (lockfiles/bases/) and of each task's apt.lock, from
  the lock's URL(s) in order;
- wheels of each task's requirements.txt: for every pin, the wheel among the locked hashes
  that installs in the task's image (the CPython and glibc of its python3 and libc6 packages,
  `lockfiles.python_target`; bookworm: CPython 3.11, manylinux <= 2.36), found through
  the index's JSON simple API (PEP 691; the lock's hash is what is checked);
- SWE sources (git bundles / archives), copied from the project or downloaded.

Every artifact has an ordered list of sources (`artifact_sources`), each checked by sha256:
1. the lock's URLs (Debian's mirror, PyPI, the project's file);
2. for a .deb of a lock with a snapshot time, the same pool path in a snapshot.debian.org
   style archive (`snapshot_url`: gen.yaml `snapshot_base`, or $GEN_SNAPSHOT_BASE), so a
   version that left the mirror is still found;
3. the project's artifact cache in its registry (`<registry>/artifacts`, blob sha256:<hex>,
   filled by `gen cache push`).
When every source fails, the error names the artifact, each source tried and why, and the fix.

Each file is streamed into a temp file inside the store while it is hashed, and renamed to
`sha256/<hex>` only when the hash (and size) match the lock. Files already in the store are
verified and not downloaded again. `.gen/fetch/names.json` remembers the file name each
wheel had (the lock names wheels by hash only); `gen build` uses it to stage `vendor/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.cas import Store, default_store
from generator.core.errors import CheckFailed, LockError
from generator.core.fsutil import atomic_write
from generator.lock.lockfiles import base_lock_path
from generator.lock.lockset import PYTHON_TARGETS, LockSet, read_lockset
from generator.lock.tools import coverage_locks, read_coverage_lock
from generator.spec.config import load_dataset_config
from generator.spec.model import DatasetConfig, SweTask
from generator.spec.project import load_project

__all__ = ["SOURCE_KINDS", "Artifact", "FetchResult", "Source", "all_failed_message",
           "artifact_sources", "base_artifacts", "fetch_artifacts", "fetch_project", "plan",
           "snapshot_url", "wheel_tags"]

TIMEOUT = float(os.environ.get("GEN_FETCH_TIMEOUT", "60"))
PYPI_SIMPLE = os.environ.get("GEN_PYPI_INDEX", "https://pypi.org/simple")
FIX = "run `gen lock --update` to re-pin it"
ALL_FAILED_FIX = ("run `gen lock --update` to re-pin it, or `gen cache push` from a machine "
                  "that has it")
SNAPSHOT_ENV = "GEN_SNAPSHOT_BASE"
SNAPSHOT_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
# where an artifact can come from, in the order they are tried
SOURCE_KINDS = ("mirror", "snapshot", "cache")
# what a 404/410 means, per kind of source
_GONE = {"mirror": "gone from the mirror", "snapshot": "not in the snapshot archive",
         "cache": "not in the artifact cache"}
NAMES_FILE = state.FETCH_NAMES


@dataclass(frozen=True)
class Artifact:
    kind: str  # deb | wheel | source
    filename: str  # its name in the build context (vendor/<kind>s/<filename>)
    sha256: str  # hex
    urls: tuple[str, ...]  # where to get it (http(s) or file paths)
    size: int | None
    lock_file: str  # lockfiles/tasks/<id>/apt.lock ...
    entry: str  # the lock entry, e.g. "tmux=3.3a-3 (amd64)"
    tasks: tuple[str, ...] = ()
    # the lock's snapshot timestamp (YYYYMMDDTHHMMSSZ) for .debs, "" when it has none
    snapshot: str = ""


@dataclass(frozen=True)
class Source:
    """One place an artifact can be fetched from."""

    kind: str  # mirror | snapshot | cache (SOURCE_KINDS)
    url: str  # what is opened: an http(s) URL or a local path
    label: str = ""  # how messages name it (default: the URL)

    @property
    def name(self) -> str:
        return self.label or self.url


@dataclass
class FetchResult:
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    # downloads per source kind (mirror / snapshot / cache)
    sources: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCE_KINDS, 0))


class _Failed(Exception):
    pass


# --------------------------------------------------------------------------------------
# Wheels: which of the locked files installs on the target
# --------------------------------------------------------------------------------------


def wheel_tags(platform: str, target: tuple[str, str] | None = None) -> list[str]:
    """Compatible wheel tags for Debian bookworm's CPython on `platform`, best first."""
    from packaging import tags

    version, plat = target or PYTHON_TARGETS[platform]
    major, minor = (int(x) for x in version.split("."))
    machine = plat.split("-", 1)[0]
    glibc_minor = int(plat.rsplit("_", 1)[1])
    plats = [f"manylinux_2_{m}_{machine}" for m in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    expanded: list[str] = []
    for p in plats:
        expanded.append(p)
        m = int(p.split("_")[2])
        if m in legacy:
            expanded.append(f"{legacy[m]}_{machine}")
    expanded.append(f"linux_{machine}")
    out = [str(t) for t in tags.cpython_tags((major, minor), platforms=expanded)]
    out += [str(t) for t in tags.compatible_tags((major, minor), f"cp{major}{minor}",
                                                 platforms=expanded)]
    return out


def _pypi_files(name: str, version: str) -> list[dict[str, Any]]:
    """The files of `name` on the index (PEP 691 JSON simple API); matched later by sha256."""
    from packaging.utils import canonicalize_name

    url = f"{PYPI_SIMPLE.rstrip('/')}/{canonicalize_name(name)}/"
    req = urllib.request.Request(url, headers={"Accept": "application/vnd.pypi.simple.v1+json",
                                               "User-Agent": "gen-fetch"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            data = json.load(resp)
    except urllib.error.HTTPError as exc:
        raise _Failed(f"the index has no project {name} (HTTP {exc.code} for {url})") from exc
    except (OSError, ValueError) as exc:
        raise _Failed(f"the index is unreachable for {name}=={version}: {exc}") from exc
    out = []
    for f in data.get("files", []):
        sha = (f.get("hashes") or {}).get("sha256")
        if sha:
            out.append({"filename": f.get("filename", ""), "sha256": sha,
                        "url": urllib.parse.urljoin(url, f.get("url", "")),
                        "size": f.get("size")})
    return out


def _choose_wheel(name: str, version: str, hashes: Sequence[str], platform: str,
                  lock_file: str, tasks: tuple[str, ...],
                  target: tuple[str, str] | None = None) -> Artifact:
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    allowed = {h.split(":", 1)[1] for h in hashes}
    target = target or PYTHON_TARGETS[platform]
    rank = {t: i for i, t in enumerate(wheel_tags(platform, target))}
    best: tuple[int, dict[str, Any]] | None = None
    entry = f"{name}=={version}"
    for f in _pypi_files(name, version):
        fname = f.get("filename", "")
        sha = f["sha256"]
        if not fname.endswith(".whl") or sha not in allowed:
            continue
        try:
            _, _, _, wtags = parse_wheel_filename(fname)
        except InvalidWheelFilename:
            continue
        score = min((rank[str(t)] for t in wtags if str(t) in rank), default=None)
        if score is not None and (best is None or score < best[0]):
            best = (score, f)
    if best is None:
        raise _Failed(f"{lock_file}: {entry} has no locked wheel for {platform} (sdists are not "
                      "built: the build is offline) (fix: pin a version that ships a wheel for "
                      f"CPython {target[0]} {target[1].split('-', 1)[-1]}, then "
                      "`gen lock --update`)")
    f = best[1]
    return Artifact("wheel", f["filename"], f["sha256"], (f["url"],),
                    int(f.get("size") or 0) or None, lock_file, entry, tasks)


# --------------------------------------------------------------------------------------
# The plan: every artifact the lockfiles name
# --------------------------------------------------------------------------------------


def base_artifacts(config: DatasetConfig, locks: LockSet,
                   refs: Sequence[str] | None = None) -> list[Artifact]:
    """The .debs of each declared base's lock (all bases, or those of `refs`)."""
    out: list[Artifact] = []
    for decl in config.bases:
        if refs is not None and decl.ref not in refs:
            continue
        got = locks.base(decl.ref)
        rel = f"lockfiles/bases/{base_lock_path(locks.root, decl.ref).name}"
        if got is None:
            raise LockError(f"base '{decl.ref}' has no base lock", file=rel,
                            hint="run `gen lock`")
        lock = got[0]
        out += [Artifact("deb", p.filename, p.sha256, p.urls, p.size, rel,
                         f"{p.name}={p.version} ({p.arch})", (), lock.snapshot)
                for p in lock.packages]
    return out


def plan(project_dir: Path, *, only: Sequence[str] | None = None,
         locks: LockSet | None = None) -> list[Artifact]:
    """Every artifact of the project's locks (wheels resolved through PyPI), deduplicated:
    the bases' .debs (always, they are shared) and the tasks' (all, or those of `only`)."""
    project = load_project(project_dir)
    locks = locks or read_lockset(project.root)
    platform = project.config.platforms[0]
    found: dict[str, Artifact] = {}
    errors: list[str] = []

    def add(a: Artifact) -> None:
        have = found.get(a.sha256)
        found[a.sha256] = a if have is None else Artifact(
            have.kind, have.filename, have.sha256, have.urls, have.size, have.lock_file,
            have.entry, tuple(sorted({*have.tasks, *a.tasks})), have.snapshot or a.snapshot)

    used = {t.environment.base_image for t in project.tasks if not only or t.id in only}
    for a in base_artifacts(project.config, locks,
                            [b.ref for b in project.config.bases if b.ref in used]):
        add(a)

    Job = tuple[str, str, tuple[str, ...], str, tuple[str, ...], tuple[str, str]]
    wheel_jobs: list[Job] = []
    for task in project.tasks:
        if only and task.id not in only:
            continue
        rel = f"lockfiles/tasks/{task.id}"
        if task.environment.apt:
            apt = locks.apt(task.id)
            if apt is None:
                raise LockError(f"task '{task.id}' has no apt.lock", file=f"{rel}/apt.lock",
                                hint="run `gen lock`")
            for p in apt.packages:
                add(Artifact("deb", p.filename, p.sha256, p.urls, p.size, f"{rel}/apt.lock",
                             f"{p.name}={p.version} ({p.arch})", (task.id,), apt.snapshot))
        if task.environment.python:
            py = locks.python(task.id)
            if py is None:
                raise LockError(f"task '{task.id}' has no requirements.txt lock",
                                file=f"{rel}/requirements.txt", hint="run `gen lock`")
            target = locks.python_target(task.id, task.environment.base_image, platform)
            for pin in py.pins:
                wheel_jobs.append((pin.name, pin.version, pin.hashes, f"{rel}/requirements.txt",
                                   (task.id,), target))
        if isinstance(task, SweTask):
            src = locks.source(task.id)
            if src is None:
                raise LockError(f"task '{task.id}' has no source.lock", file=f"{rel}/source.lock",
                                hint="run `gen lock`")
            loc = src.location
            url = loc if urllib.parse.urlsplit(loc).scheme in ("http", "https") \
                else str((project.root / loc).resolve())
            add(Artifact("source", src.filename, src.sha256, (url,), None, f"{rel}/source.lock",
                         f"{src.type} {loc}", (task.id,)))
    for tool in coverage_locks(project, locks):  # gen's own tools (lock/tools.py)
        tasks = tuple(t for t in tool.tasks if not only or t in only)
        tlock = read_coverage_lock(project.root, tool.rel) if tasks else None
        if tasks and tlock is None:
            raise LockError(f"{tool.rel} is missing", file=tool.rel, hint="run `gen lock`")
        for pin in tlock.pins if tlock else ():
            wheel_jobs.append((pin.name, pin.version, pin.hashes, tool.rel, tasks, tool.target))
    seen: dict[tuple[str, str, tuple[str, ...], tuple[str, str]], Artifact] = {}
    if wheel_jobs:
        def one(job: Job) -> Artifact | str:
            key = (job[0].lower(), job[1], tuple(sorted(job[2])), job[5])
            if key in seen:
                return seen[key]
            try:
                a = _choose_wheel(job[0], job[1], job[2], platform, job[3], job[4], job[5])
            except _Failed as exc:
                return str(exc)
            seen[key] = a
            return a

        with ThreadPoolExecutor(max_workers=8) as pool:
            for got in pool.map(one, wheel_jobs):
                if isinstance(got, str):
                    errors.append(got)
                else:
                    add(got)
    if errors:
        raise CheckFailed(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1
                                       else ""), errors)
    return sorted(found.values(), key=lambda a: (a.kind, a.filename, a.sha256))


# --------------------------------------------------------------------------------------
# Where an artifact comes from
# --------------------------------------------------------------------------------------


def snapshot_url(url: str, snapshot: str, base: str) -> str | None:
    """The snapshot.debian.org-layout URL of a mirror URL `<prefix>/pool/<rest>` at time
    `snapshot`: `<base>/archive/<last segment of prefix>/<snapshot>/pool/<rest>`.

    None when there is no such URL: no or a malformed snapshot time, not an http(s) URL, no
    `/pool/` in its path, or nothing before it to name the archive by."""
    if not SNAPSHOT_RE.match(snapshot):
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    prefix, sep, rest = parts.path.partition("/pool/")
    name = prefix.rstrip("/").rsplit("/", 1)[-1]
    if not sep or not rest or not name:
        return None
    return f"{base.rstrip('/')}/archive/{name}/{snapshot}/pool/{rest}"


def artifact_sources(a: Artifact, *, snapshot_base: str | None,
                     cache: str | None) -> list[Source]:
    """Where `a` can be fetched from, in the order to try: the lock's URLs, then (a .deb
    with a snapshot time, `snapshot_base` set) each one's snapshot-archive URL, then
    (`cache` = a registry repository) the blob sha256:<hex> of the artifact cache."""
    out = [Source("mirror", u) for u in a.urls]
    if a.kind == "deb" and a.snapshot and snapshot_base:
        seen: set[str] = set()
        for u in a.urls:
            snap = snapshot_url(u, a.snapshot, snapshot_base)
            if snap is not None and snap not in seen:
                seen.add(snap)
                out.append(Source("snapshot", snap))
    if cache:
        from generator.image.registry import blob_url

        out.append(Source("cache", blob_url(cache, f"sha256:{a.sha256}"), cache))
    return out


def all_failed_message(a: Artifact, tried: Sequence[tuple[Source, str]]) -> str:
    """One line: the artifact, every source tried with why it failed, the fix."""
    what = f"{a.kind} {a.filename} ({a.lock_file}: {a.entry})"
    if not tried:
        return f"{what}: no source to fetch it from (fix: {ALL_FAILED_FIX})"
    how = "; ".join(f"{s.kind} {s.name}: {why}" for s, why in tried)
    return f"{what}: every source failed: {how} (fix: {ALL_FAILED_FIX})"


# --------------------------------------------------------------------------------------
# Downloading into the store
# --------------------------------------------------------------------------------------


def _stream(a: Artifact, url: str, store: Store, kind: str = "mirror") -> int:
    """Copy one URL/path into the store, verifying sha256 (and size) on the fly."""
    h = hashlib.sha256()
    n = 0
    with store.writer() as (fh, tmp):
        try:
            if urllib.parse.urlsplit(url).scheme in ("http", "https"):
                req = urllib.request.Request(url, headers={"User-Agent": "gen-fetch",
                                                          "Accept": "*/*"})
                src = urllib.request.urlopen(req, timeout=TIMEOUT)
            else:
                src = open(url, "rb")  # noqa: SIM115 - closed below
        except urllib.error.HTTPError as exc:
            reason = _GONE.get(kind, "gone") if exc.code in (404, 410) else "refused"
            raise _Failed(f"HTTP {exc.code} ({reason})") from exc
        except FileNotFoundError as exc:
            raise _Failed("the file is missing") from exc
        except OSError as exc:
            raise _Failed(f"unreachable: {getattr(exc, 'reason', exc)}") from exc
        try:
            with src:
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                    n += len(chunk)
                    fh.write(chunk)
        except TimeoutError as exc:
            raise _Failed(f"timed out after {TIMEOUT:.0f}s") from exc
        except OSError as exc:
            raise _Failed(f"download broke off: {exc}") from exc
        fh.flush()
        got = h.hexdigest()
        if got != a.sha256:
            raise _Failed(f"sha256 mismatch: got {got}, the lock says {a.sha256}")
        if a.size is not None and n != a.size:
            raise _Failed(f"size mismatch: got {n} bytes, the lock says {a.size}")
        store.commit(tmp, got)
    return n


def _fetch_one(a: Artifact, store: Store, sources: Sequence[Source]) -> tuple[str, int, str]:
    """("present", 0, "store") or ("downloaded", bytes, source kind); _Failed naming every
    source tried when none served it."""
    if store.has(a.sha256, verify=True):
        return "present", 0, "store"
    tried: list[tuple[Source, str]] = []
    for src in sources:
        try:
            return "downloaded", _stream(a, src.url, store, src.kind), src.kind
        except _Failed as exc:
            tried.append((src, str(exc)))
    raise _Failed(all_failed_message(a, tried))


def _load_names(project: Path) -> dict[str, str]:
    try:
        data = json.loads((project / NAMES_FILE).read_text())
        return {str(k): str(v) for k, v in data.items()}
    except (FileNotFoundError, ValueError):
        return {}


def artifact_names(project: Path) -> dict[str, str]:
    """sha256 hex -> file name, for every artifact `gen fetch` stored (wheels need it)."""
    return _load_names(project)


def save_names(project: Path, names: dict[str, str]) -> None:
    """Write `.gen/fetch/names.json` (sorted, atomically)."""
    atomic_write(project / NAMES_FILE,
                 (json.dumps(dict(sorted(names.items())), indent=1) + "\n").encode())


def fetch_project(project_dir: Path, *, only: Sequence[str] | None = None,
                  store: Store | None = None, jobs: int = 4,
                  progress: Callable[[int], None] | None = None) -> FetchResult:
    project_dir = Path(project_dir)
    return fetch_artifacts(project_dir, plan(project_dir, only=only), store=store, jobs=jobs,
                           progress=progress)


def snapshot_base(config: DatasetConfig) -> str:
    """Where snapshot-archive URLs point: $GEN_SNAPSHOT_BASE, else gen.yaml's snapshot_base."""
    return (os.environ.get(SNAPSHOT_ENV, "").strip() or config.snapshot_base).rstrip("/")


def fetch_artifacts(project_dir: Path, artifacts: Sequence[Artifact], *,
                    store: Store | None = None, jobs: int = 4,
                    progress: Callable[[int], None] | None = None,
                    config: DatasetConfig | None = None) -> FetchResult:
    """Put `artifacts` in the store (verified), each from the first of its sources that
    serves the locked bytes (`artifact_sources`; `config` = the project's gen.yaml unless
    given); raises CheckFailed naming each one no source served."""
    store = store or default_store(project_dir)
    config = config or load_dataset_config(Path(project_dir))
    snap, cache = snapshot_base(config), config.artifact_cache
    result = FetchResult()
    failures: list[str] = []

    def work(a: Artifact) -> tuple[Artifact, str, int, str | None]:
        try:
            state, n, kind = _fetch_one(a, store, artifact_sources(a, snapshot_base=snap,
                                                                   cache=cache))
        except _Failed as exc:
            return a, str(exc), 0, None
        return a, state, n, kind

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for a, state, n, kind in pool.map(work, artifacts):
            if progress:
                progress(1)
            if state == "present":
                result.present.append(a.filename)
            elif state == "downloaded":
                result.downloaded.append(a.filename)
                result.bytes_downloaded += n
                result.sources[str(kind)] = result.sources.get(str(kind), 0) + 1
            else:
                failures.append(state)
            result.artifacts.append({**asdict(a), "urls": list(a.urls), "tasks": list(a.tasks),
                                     "ok": kind is not None, "source": kind})
    names = _load_names(project_dir)
    names.update({a.sha256: a.filename for a in artifacts})
    save_names(project_dir, names)
    if failures:
        result.failed = failures
        raise CheckFailed(failures[0] + (f" (and {len(failures) - 1} more failed)"
                                         if len(failures) > 1 else ""), failures)
    return result


def summarize(artifacts: Iterable[Artifact]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in artifacts:
        out[a.kind] = out.get(a.kind, 0) + 1
    return out
