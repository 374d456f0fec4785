"""The project's artifact cache: every locked artifact as a blob of `<registry>/artifacts`.

`gen cache push` makes sure every artifact of the plan (the bases' and the tasks' .debs,
wheels, sources) is in the store (fetching what is missing), uploads each as blob
`sha256:<hex>` of the project's artifact-cache repository (skipping blobs the registry
already has), then pushes one OCI image manifest listing them ("ORAS-style" artifact
manifest: `artifactType` application/vnd.gen.artifacts.v1, the empty config, one layer per
artifact titled with its file name), tagged with the dataset version. Its bytes are RFC 8785
canonical JSON of the sorted artifact list, so its digest is a pure function of that list.
`.gen/cache/artifacts.json` records the repository, that digest and the artifact count;
`gen release` records them as the release's artifact index.

`gen fetch` tries this cache last (generator.lock.fetch.artifact_sources): a .deb that left
Debian's mirror and the snapshot archive is still fetched, by its sha256, from here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.canonical import canonical
from generator.core.cas import Store, default_store
from generator.core.errors import InputError, ToolError
from generator.core.fsutil import atomic_write
from generator.image import registry
from generator.lock.fetch import Artifact, FetchResult, fetch_artifacts, plan
from generator.spec.config import load_dataset_config
from generator.spec.model import DATASET_FILE, DatasetConfig

__all__ = ["ARTIFACT_TYPE", "INDEX_FILE", "LAYER_TYPES", "CacheStatus", "PushResult",
           "cache_repository", "index_manifest", "index_tag", "push", "read_index",
           "recorded_index", "status", "upload_artifacts"]

INDEX_FILE = state.ARTIFACT_INDEX
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ARTIFACT_TYPE = "application/vnd.gen.artifacts.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest()
LAYER_TYPES = {"deb": "application/vnd.gen.artifact.deb",
               "wheel": "application/vnd.gen.artifact.wheel",
               "source": "application/vnd.gen.artifact.source"}
TITLE = "org.opencontainers.image.title"
_TAG_RE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class PushResult:
    repository: str
    digest: str  # of the artifact index manifest
    tag: str
    artifacts: int
    uploaded: list[str] = field(default_factory=list)  # file names
    present: list[str] = field(default_factory=list)  # already in the registry
    bytes_uploaded: int = 0
    fetched: FetchResult | None = None


@dataclass
class CacheStatus:
    repository: str
    artifacts: int
    missing: list[Artifact] = field(default_factory=list)
    index: dict[str, Any] | None = None  # .gen/cache/artifacts.json
    index_present: bool = False  # its manifest is in the registry
    index_current: bool = False  # it was pushed for the artifacts the locks name now


def cache_repository(config: DatasetConfig) -> str:
    """`<registry>/artifacts`; InputError (exit 2) when gen.yaml names no registry."""
    repo = config.artifact_cache
    if not repo:
        raise InputError("the project has no registry to hold its artifact cache",
                         file=DATASET_FILE, field="registry",
                         hint="add `registry: host:port/name` (e.g. the one `gen infra up` "
                              "starts: 127.0.0.1:5000/<project>)")
    return repo


def index_tag(version: str) -> str:
    """The dataset version as a registry tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})."""
    tag = _TAG_RE.sub("_", version)
    if not tag or tag[0] in ".-":
        tag = "v" + tag
    return tag[:128]


def index_manifest(entries: Iterable[tuple[Artifact, int]]) -> bytes:
    """The artifact index: an OCI image manifest (artifactType application/vnd.gen.
    artifacts.v1, the empty config) with one layer per distinct artifact, sorted by kind,
    file name and sha256; `entries` are (artifact, its size in bytes). Canonical JSON."""
    seen: dict[str, tuple[Artifact, int]] = {}
    for a, size in entries:
        seen.setdefault(a.sha256, (a, size))
    layers = [{"mediaType": LAYER_TYPES.get(a.kind, f"application/vnd.gen.artifact.{a.kind}"),
               "digest": f"sha256:{a.sha256}", "size": size,
               "annotations": {TITLE: a.filename}}
              for a, size in sorted(seen.values(),
                                    key=lambda e: (e[0].kind, e[0].filename, e[0].sha256))]
    return canonical({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_BLOB)},
        "layers": layers,
    })


def plan_digest(artifacts: Iterable[Artifact]) -> str:
    """sha256 over the sorted set of the artifacts' sha256s: what an index was pushed for."""
    hexes = sorted({a.sha256 for a in artifacts})
    return "sha256:" + hashlib.sha256("".join(h + "\n" for h in hexes).encode()).hexdigest()


def covers(index: dict[str, Any], artifacts: Iterable[Artifact]) -> bool:
    """Whether a recorded index was pushed for exactly these artifacts."""
    return bool(index.get("plan") == plan_digest(artifacts))


def read_index(project: Path) -> dict[str, Any] | None:
    """`.gen/cache/artifacts.json`, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(project) / INDEX_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None
    ok = (isinstance(data, dict) and isinstance(data.get("repository"), str)
          and isinstance(data.get("digest"), str)
          and re.fullmatch(r"sha256:[0-9a-f]{64}", data["digest"]) is not None)
    return data if ok else None


def recorded_index(project: Path, *, artifacts: Sequence[Artifact] | None = None
                   ) -> tuple[dict[str, str] | None, str]:
    """({repository, digest} of the pushed artifact index, "") when `.gen/cache/artifacts.
    json` names a manifest the registry holds that was pushed for the artifacts the locks
    name now (`plan(project)`, or `artifacts`); else (None, why there is none)."""
    data = read_index(project)
    if data is None:
        return None, (f"no artifact index ({INDEX_FILE} is missing or unreadable; "
                      "`gen cache push` writes it)")
    arts = plan(project) if artifacts is None else artifacts
    if not covers(data, arts):
        return None, (f"no artifact index: the one {INDEX_FILE} records was pushed for other "
                      "locks than the current ones (fix: gen cache push)")
    repo, digest = data["repository"], data["digest"]
    try:
        there = registry.manifest_exists(repo, digest)
    except ToolError as exc:
        return None, f"no artifact index: {exc.message}"
    if not there:
        return None, (f"no artifact index: {repo}@{digest[:19]}… (from {INDEX_FILE}) is not "
                      "in the registry (fix: gen cache push)")
    return {"repository": repo, "digest": digest}, ""


def upload_artifacts(repo: str, artifacts: Sequence[Artifact], store: Store, *,
                     jobs: int = 4, progress: Callable[[int], None] | None = None,
                     ) -> tuple[list[str], list[str], int]:
    """Upload each artifact's stored file as blob sha256:<hex> of `repo` unless the registry
    has it: (uploaded, already present, bytes uploaded)."""
    distinct = list({a.sha256: a for a in artifacts}.values())
    missing = [a.filename for a in distinct if not store.has(a.sha256, verify=False)]
    if missing:
        raise InputError(f"{missing[0]} is not in the store {store.root}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                         file=str(store.root), hint="run `gen fetch` first")

    def one(a: Artifact) -> tuple[Artifact, int | None]:
        digest = f"sha256:{a.sha256}"
        if registry.has_blob(repo, digest):
            return a, None
        path = store.path(a.sha256)
        registry.upload_blob(repo, digest, path)
        return a, path.stat().st_size

    uploaded: list[str] = []
    present: list[str] = []
    total = 0
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for a, n in pool.map(one, distinct):
            if progress:
                progress(1)
            if n is None:
                present.append(a.filename)
            else:
                uploaded.append(a.filename)
                total += n
    return uploaded, present, total


def _put_empty_config(repo: str, store: Store) -> None:
    if registry.has_blob(repo, EMPTY_DIGEST):
        return
    with store.writer() as (fh, tmp):
        fh.write(EMPTY_BLOB)
        fh.flush()
        registry.upload_blob(repo, EMPTY_DIGEST, tmp)


def push(project: Path, *, store: Store | None = None, jobs: int = 4,
         artifacts: Sequence[Artifact] | None = None,
         fetch_progress: Callable[[int], None] | None = None,
         progress: Callable[[int], None] | None = None) -> PushResult:
    """`gen cache push`: every artifact of `plan(project)` (or `artifacts`) into the store
    (fetched when missing), uploaded to `<registry>/artifacts`, then the artifact index
    manifest pushed (tag = dataset version) and recorded in `.gen/cache/artifacts.json`."""
    project = Path(project)
    config = load_dataset_config(project)
    repo = cache_repository(config)
    store = store or default_store(project)
    arts = list(plan(project) if artifacts is None else artifacts)
    fetched = fetch_artifacts(project, arts, store=store, jobs=jobs, progress=fetch_progress,
                              config=config)
    uploaded, present, nbytes = upload_artifacts(repo, arts, store, jobs=jobs,
                                                 progress=progress)
    _put_empty_config(repo, store)
    body = index_manifest((a, store.path(a.sha256).stat().st_size) for a in arts)
    tag = index_tag(config.version)
    digest = registry.put_manifest(repo, tag, body, MANIFEST_TYPE)
    count = len({a.sha256 for a in arts})
    record = {"repository": repo, "digest": digest, "tag": tag, "artifacts": count,
              "plan": plan_digest(arts),
              "media_type": MANIFEST_TYPE, "artifact_type": ARTIFACT_TYPE}
    atomic_write(project / INDEX_FILE, (json.dumps(record, indent=1, sort_keys=True)
                                        + "\n").encode())
    return PushResult(repo, digest, tag, count, sorted(uploaded), sorted(present), nbytes,
                      fetched)


def status(project: Path, *, artifacts: Sequence[Artifact] | None = None) -> CacheStatus:
    """Which artifacts of the plan the registry's artifact cache lacks (HEAD each blob), and
    whether the recorded artifact index is there."""
    project = Path(project)
    repo = cache_repository(load_dataset_config(project))
    arts = list({a.sha256: a for a in (plan(project) if artifacts is None else artifacts)}
                .values())
    with ThreadPoolExecutor(max_workers=8) as pool:
        have = list(pool.map(lambda a: registry.has_blob(repo, f"sha256:{a.sha256}"), arts))
    index = read_index(project)
    index_present = index is not None and registry.manifest_exists(index["repository"],
                                                                   index["digest"])
    current = index is not None and covers(index, arts)
    return CacheStatus(repo, len(arts), [a for a, ok in zip(arts, have, strict=True) if not ok],
                       index, index_present, current)
