"""The release manifest, the in-toto Statement over it, and the deterministic release archive.

`manifest.json` is RFC 8785 (JCS) canonical JSON:

    {"manifest_version": 1,
     "generator": {"name": "gen", "version": "0.1.0"},
     "dataset": {"name": "...", "version": "...", "platforms": ["linux/amd64"]},
     "source_date_epoch": 1700000000,
     "files": {"<task>/<path>": {"sha256": "<hex>", "size": 123, "mode": "0644"}},
     "images": {"<repository>": {"<os/arch>": "sha256:<normalized manifest digest>"}},
     "lockfiles": {"lockfiles/<path>": "sha256:<hex>"},
     "reports": {"validate": "sha256:<hex>", "verify": "sha256:<hex>"},
     "archive": {"name": "<name>-<version>.tar", "sha256": "sha256:<hex>", "size": 123},
     "artifact_index": {"repository": "<registry>/artifacts", "digest": "sha256:<hex>"}}

`artifact_index` (only when `gen cache push` recorded one that the registry holds) is the OCI
manifest listing every locked artifact in the project's artifact cache; the Statement names
it among its resolved dependencies.

`files` is every regular file of the dataset folder (symlinks and special files are refused),
relative to it. The Statement's subjects are manifest.json and every image digest: completeness
of the tree comes from the manifest, which `gen verify-release` re-checks file by file.

Everything here is pure: the same dataset gives the same manifest, Statement and tar bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from generator import __version__
from generator.core.canonical import canonical
from generator.core.errors import InputError
from generator.lock.lockfiles import DIGEST_RE, HEX64_RE

__all__ = [
    "BUILD_TYPE",
    "MANIFEST_NAME",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "FileEntry",
    "Manifest",
    "archive_name",
    "build_archive",
    "build_manifest",
    "build_statement",
    "canonical",
    "compare_files",
    "hash_archive",
    "hash_tree",
    "parse_manifest",
    "sha256_hex",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# gen owns this build type; BUILD.md ("Release workflow") documents what its fields mean.
BUILD_TYPE = "urn:gen-datasets:release:v1"
LOCAL_BUILDER = "urn:gen-datasets:builder:local"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    sha256: str  # hex
    size: int
    mode: str  # "0644" or "0755"

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "mode": self.mode}


@dataclass(frozen=True)
class Manifest:
    dataset_name: str
    dataset_version: str
    platforms: tuple[str, ...]
    source_date_epoch: int
    files: dict[str, FileEntry]
    images: dict[str, dict[str, str]] = field(default_factory=dict)
    lockfiles: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    archive: dict[str, Any] | None = None
    generator_version: str = __version__
    artifact_index: dict[str, str] | None = None  # {"repository", "digest"}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "manifest_version": MANIFEST_VERSION,
            "generator": {"name": "gen", "version": self.generator_version},
            "dataset": {"name": self.dataset_name, "version": self.dataset_version,
                        "platforms": list(self.platforms)},
            "source_date_epoch": self.source_date_epoch,
            "files": {k: v.to_json() for k, v in sorted(self.files.items())},
            "images": {r: dict(sorted(p.items())) for r, p in sorted(self.images.items())},
            "lockfiles": dict(sorted(self.lockfiles.items())),
            "reports": dict(sorted(self.reports.items())),
        }
        if self.archive is not None:
            body["archive"] = dict(self.archive)
        if self.artifact_index is not None:
            body["artifact_index"] = dict(self.artifact_index)
        return body

    def to_bytes(self) -> bytes:
        return canonical(self.to_json())


# --------------------------------------------------------------------------------------
# Hashing a tree
# --------------------------------------------------------------------------------------

def _mode(st_mode: int) -> str:
    return "0755" if st_mode & 0o111 else "0644"


def hash_tree(root: Path) -> dict[str, FileEntry]:
    """Every regular file below `root` -> FileEntry, keyed by POSIX path relative to `root`.

    Symlinks, sockets, devices and FIFOs are refused (InputError naming the path): a release
    covers bytes, and a link would let the tree change under a signed manifest.
    """
    out: dict[str, FileEntry] = {}
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = Path(entry.path).relative_to(root).as_posix()
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise InputError("symlinks are not allowed in a release", file=entry.path,
                                 hint="replace the link with the file it points to")
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = _hash_file(Path(entry.path), st.st_mode)
            else:
                raise InputError("only regular files and directories can be released",
                                 file=entry.path, hint="remove this special file")
    return dict(sorted(out.items()))


def _hash_file(path: Path, st_mode: int) -> FileEntry:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return FileEntry(h.hexdigest(), size, _mode(st_mode))


def compare_files(expected: Mapping[str, FileEntry], actual: Mapping[str, FileEntry],
                  where: str) -> list[str]:
    """One line per missing, extra or changed file (`where` prefixes each path)."""
    problems: list[str] = []
    for rel in sorted(set(expected) | set(actual)):
        exp, act = expected.get(rel), actual.get(rel)
        name = f"{where}/{rel}" if where else rel
        if act is None:
            problems.append(f"{name}: missing (listed in the manifest)")
        elif exp is None:
            problems.append(f"{name}: extra file (not in the manifest)")
        elif exp.sha256 != act.sha256 or exp.size != act.size:
            problems.append(f"{name}: changed (sha256 {act.sha256[:12]}…, manifest says "
                            f"{exp.sha256[:12]}…)")
        elif exp.mode != act.mode:
            problems.append(f"{name}: mode {act.mode}, manifest says {exp.mode}")
    return problems


# --------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------

def build_manifest(
    *,
    name: str,
    version: str,
    platforms: Iterable[str],
    source_date_epoch: int,
    files: Mapping[str, FileEntry],
    images: Mapping[str, Mapping[str, str]] | None = None,
    lockfiles: Mapping[str, str] | None = None,
    reports: Mapping[str, str] | None = None,
    archive: Mapping[str, Any] | None = None,
    artifact_index: Mapping[str, str] | None = None,
) -> Manifest:
    if artifact_index is not None and not _index_ok(artifact_index):
        raise InputError(f"bad artifact index {dict(artifact_index)}",
                         file=".gen/cache/artifacts.json", hint="run `gen cache push` again")
    for repo, plats in (images or {}).items():
        for plat, digest in plats.items():
            if not DIGEST_RE.match(digest):
                raise InputError(f"image {repo} ({plat}) has no sha256 digest: '{digest}'",
                                 hint="run `gen build` again")
    return Manifest(
        dataset_name=name, dataset_version=version, platforms=tuple(platforms),
        source_date_epoch=int(source_date_epoch), files=dict(files),
        images={r: dict(p) for r, p in (images or {}).items()},
        lockfiles=dict(lockfiles or {}), reports=dict(reports or {}),
        archive=dict(archive) if archive is not None else None,
        artifact_index=({"repository": artifact_index["repository"],
                         "digest": artifact_index["digest"]}
                        if artifact_index is not None else None))


def _index_ok(index: Any) -> bool:
    return (isinstance(index, Mapping) and set(index) == {"repository", "digest"}
            and isinstance(index["repository"], str) and bool(index["repository"])
            and isinstance(index["digest"], str) and DIGEST_RE.match(index["digest"]) is not None)


class ManifestError(ValueError):
    """manifest.json does not have the shape gen writes."""


def parse_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest.json bytes (which must be canonical)."""
    import json

    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ManifestError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ManifestError("not a JSON object")
    if obj.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError(f"unsupported manifest_version {obj.get('manifest_version')!r}")
    if canonical(obj) != data:
        raise ManifestError("not in RFC 8785 canonical form")
    try:
        ds = obj["dataset"]
        files: dict[str, FileEntry] = {}
        for rel, e in obj["files"].items():
            _check_rel(rel)
            if not (isinstance(e["sha256"], str) and HEX64_RE.match(e["sha256"])
                    and isinstance(e["size"], int) and e["mode"] in ("0644", "0755")):
                raise ManifestError(f"bad file entry for '{rel}'")
            files[rel] = FileEntry(e["sha256"], e["size"], e["mode"])
        images: dict[str, dict[str, str]] = {}
        for repo, plats in obj["images"].items():
            images[repo] = {}
            for plat, digest in plats.items():
                if not (isinstance(digest, str) and DIGEST_RE.match(digest)):
                    raise ManifestError(f"bad digest for image '{repo}' ({plat})")
                images[repo][plat] = digest
        archive = obj.get("archive")
        if archive is not None and not (
                isinstance(archive.get("name"), str) and "/" not in archive["name"]
                and archive["name"] not in ("", ".", "..")
                and isinstance(archive.get("sha256"), str)
                and DIGEST_RE.match(archive["sha256"])):
            raise ManifestError("bad archive entry")
        index = obj.get("artifact_index")
        if index is not None and not _index_ok(index):
            raise ManifestError("bad artifact_index entry")
        return Manifest(
            dataset_name=str(ds["name"]), dataset_version=str(ds["version"]),
            platforms=tuple(ds.get("platforms", ())),
            source_date_epoch=int(obj["source_date_epoch"]), files=files, images=images,
            lockfiles=dict(obj.get("lockfiles", {})), reports=dict(obj.get("reports", {})),
            archive=archive, generator_version=str(obj["generator"]["version"]),
            artifact_index=dict(index) if index is not None else None)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"missing or malformed field: {exc}") from exc


def _check_rel(rel: str) -> None:
    p = PurePosixPath(rel)
    if (not rel or rel.startswith("/") or any(part in ("", ".", "..") for part in rel.split("/"))
            or p.as_posix() != rel):
        raise ManifestError(f"unsafe path in manifest: '{rel}'")


# --------------------------------------------------------------------------------------
# The deterministic archive
# --------------------------------------------------------------------------------------

def archive_name(name: str, version: str) -> str:
    """'<name>-<version>.tar' with anything unsafe in a file name replaced by '_'."""
    safe = re.sub(r"[^A-Za-z0-9._+-]", "_", f"{name}-{version}")
    return f"{safe}.tar"


def _prefix(archive: str) -> str:
    return archive[: -len(".tar")] if archive.endswith(".tar") else archive


def build_archive(root: Path, files: Mapping[str, FileEntry], archive: str, mtime: int) -> bytes:
    """An uncompressed PAX tar of `files` (read from `root`) under '<name>-<version>/'.

    Same files -> same bytes: sorted members, directories listed before their contents,
    uid/gid 0 with empty owner names, mtime = source_date_epoch, modes 0755/0644. The bytes
    read are re-hashed against `files`, so a file that changed since hashing is an error.
    """
    prefix = _prefix(archive)
    buf = io.BytesIO()
    dirs: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))

    def info(name: str, *, is_dir: bool, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
        ti.mode = 0o755 if is_dir else mode
        ti.size = size
        ti.mtime = mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    members = sorted([(d, True) for d in dirs] + [(f, False) for f in files])
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info(prefix, is_dir=True))
        for rel, is_dir in members:
            if is_dir:
                tar.addfile(info(f"{prefix}/{rel}", is_dir=True))
                continue
            entry = files[rel]
            data = (root / rel).read_bytes()
            if sha256_hex(data) != entry.sha256:
                raise InputError("changed while the release was being made", file=str(root / rel),
                                 hint="run `gen release` again once nothing writes to dataset/")
            tar.addfile(info(f"{prefix}/{rel}", is_dir=False, size=len(data),
                             mode=int(entry.mode, 8)), io.BytesIO(data))
    return buf.getvalue()


def hash_archive(data: bytes, archive: str) -> tuple[dict[str, FileEntry], list[str]]:
    """Members of a release tar -> (files relative to '<name>-<version>/', problems).

    Problems: members outside the prefix, absolute or '..' paths, links and special files,
    duplicates. The tar is read from memory and nothing is extracted.
    """
    prefix = _prefix(archive)
    files: dict[str, FileEntry] = {}
    problems: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for m in tar:
                name = m.name.rstrip("/") if m.isdir() else m.name
                if name == prefix and m.isdir():
                    continue
                if not name.startswith(prefix + "/"):
                    problems.append(f"{archive}: member '{m.name}' is outside '{prefix}/'")
                    continue
                rel = name[len(prefix) + 1:]
                try:
                    _check_rel(rel)
                except ManifestError:
                    problems.append(f"{archive}: unsafe member path '{m.name}'")
                    continue
                if m.isdir():
                    continue
                if not m.isreg():
                    problems.append(f"{archive}: member '{m.name}' is not a regular file")
                    continue
                if rel in files:
                    problems.append(f"{archive}: duplicate member '{m.name}'")
                    continue
                f = tar.extractfile(m)
                body = f.read() if f is not None else b""
                files[rel] = FileEntry(sha256_hex(body), len(body), _mode(m.mode))
    except (tarfile.TarError, EOFError, OSError) as exc:
        problems.append(f"{archive}: not a readable tar archive ({exc})")
    return dict(sorted(files.items())), problems


# --------------------------------------------------------------------------------------
# The in-toto Statement (SLSA provenance v1)
# --------------------------------------------------------------------------------------

def image_subjects(images: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    subjects = []
    for repo in sorted(images):
        for digest in sorted(set(images[repo].values())):
            subjects.append({"name": repo, "digest": {"sha256": digest.split(":", 1)[1]}})
    return subjects


def build_statement(manifest: Manifest, manifest_bytes: bytes,
                    env: Mapping[str, str] | None = None) -> bytes:
    """The canonical in-toto Statement v1 bytes that get signed.

    Subjects: manifest.json (sha256 of its canonical bytes) and each image digest.
    The predicate is SLSA provenance v1 filled from what gen knows; in GitHub Actions the
    source repository, commit, workflow and run URL come from the runner's environment.
    """
    env = dict(os.environ if env is None else env)
    subjects = [{"name": MANIFEST_NAME, "digest": {"sha256": sha256_hex(manifest_bytes)}}]
    subjects += image_subjects(manifest.images)

    external: dict[str, Any] = {
        "dataset": {"name": manifest.dataset_name, "version": manifest.dataset_version},
        "platforms": list(manifest.platforms),
    }
    deps: list[dict[str, Any]] = [
        {"name": rel, "digest": {"sha256": d.split(":", 1)[1]}}
        for rel, d in sorted(manifest.lockfiles.items())
    ]
    if manifest.artifact_index is not None:
        idx = manifest.artifact_index
        deps.append({"name": "artifact_index", "uri": f"oci://{idx['repository']}@{idx['digest']}",
                     "digest": {"sha256": idx["digest"].split(":", 1)[1]},
                     "mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "annotations": {"artifactType": "application/vnd.gen.artifacts.v1"}})
    builder: dict[str, Any] = {"id": LOCAL_BUILDER, "version": {"gen": manifest.generator_version}}
    metadata: dict[str, Any] = {}
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    repo, ref, sha = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_REF"), env.get("GITHUB_SHA")
    if env.get("GITHUB_ACTIONS") == "true" and repo:
        external["source"] = {"repository": f"{server}/{repo}", "ref": ref or ""}
        if ref and sha:
            deps.append({"uri": f"git+{server}/{repo}@{ref}", "digest": {"gitCommit": sha}})
        if env.get("GITHUB_WORKFLOW_REF"):
            builder["id"] = f"{server}/{env['GITHUB_WORKFLOW_REF']}"
        if env.get("GITHUB_RUN_ID"):
            attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
            metadata["invocationId"] = (f"{server}/{repo}/actions/runs/"
                                        f"{env['GITHUB_RUN_ID']}/attempts/{attempt}")
    byproducts: list[dict[str, Any]] = []
    if manifest.archive:
        byproducts.append({"name": manifest.archive["name"],
                           "digest": {"sha256": manifest.archive["sha256"].split(":", 1)[1]}})
    for kind, d in sorted(manifest.reports.items()):
        byproducts.append({"name": f"{kind}-report.json",
                           "digest": {"sha256": d.split(":", 1)[1]}})
    run_details: dict[str, Any] = {"builder": builder, "byproducts": byproducts}
    if metadata:
        run_details["metadata"] = metadata
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {"generatorVersion": manifest.generator_version,
                                       "sourceDateEpoch": manifest.source_date_epoch},
                "resolvedDependencies": deps,
            },
            "runDetails": run_details,
        },
    }
    return canonical(statement)
