"""OCI image layouts: read them, and write them deterministically.

Everything gen writes into a layout is a pure function of its content: JSON is canonical
(sorted keys, compact separators), gzip streams carry mtime 0 and no file name, and blobs are
written to a temp file and renamed to `blobs/sha256/<hex>` only once their digest is known.
(The gzip bytes depend on the zlib build: the same machine gives the same blob; another zlib may
not. The uncompressed layer digests, the diff_ids, do not depend on it.)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from generator.core.errors import InputError

__all__ = [
    "MT_CONFIG",
    "MT_DOCKER_LIST",
    "MT_DOCKER_MANIFEST",
    "MT_INDEX",
    "MT_LAYER_GZIP",
    "MT_LAYER_TAR",
    "MT_MANIFEST",
    "Descriptor",
    "Layout",
    "canonical_json",
    "config_platform",
    "gzip_stream",
    "platform_of",
]

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INDEX_TYPES = (MT_INDEX, MT_DOCKER_LIST)
MANIFEST_TYPES = (MT_MANIFEST, MT_DOCKER_MANIFEST)
REF_ANNOTATION = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


def canonical_json(obj: Any) -> bytes:
    """The bytes gen writes for every JSON blob: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        return cls(media_type=data["mediaType"], digest=data["digest"], size=int(data["size"]),
                   platform=data.get("platform"), annotations=dict(data.get("annotations") or {}))

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]


def platform_of(spec: str) -> dict[str, str]:
    """'linux/amd64' or 'linux/arm64/v8' -> an OCI platform object."""
    parts = spec.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def config_platform(config: dict[str, Any]) -> dict[str, str]:
    """The OCI platform object an image config describes (os/architecture default to
    linux/amd64, as engines that leave them out mean)."""
    out = {"os": config.get("os", "linux"), "architecture": config.get("architecture", "amd64")}
    if config.get("variant"):
        out["variant"] = config["variant"]
    return out


def platform_str(p: dict[str, Any] | None) -> str:
    if not p:
        return ""
    s = f"{p.get('os', '')}/{p.get('architecture', '')}"
    return s + (f"/{p['variant']}" if p.get("variant") else "")


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def gzip_stream(src: IO[bytes], dst: IO[bytes] | _Writable, *,
                level: int = 6) -> tuple[str, str, int]:
    """Deterministic gzip (mtime 0, no name, OS byte 'unix') of `src` into `dst`.

    Returns (sha256 of the uncompressed bytes, sha256 of the compressed bytes, compressed size).
    """
    comp = zlib.compressobj(level, zlib.DEFLATED, 31, 9)  # wbits 31: gzip header, mtime 0
    raw, gz = hashlib.sha256(), hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        raw.update(chunk)
        out = comp.compress(chunk)
        if out:
            gz.update(out)
            dst.write(out)
            size += len(out)
    out = comp.flush()
    gz.update(out)
    dst.write(out)
    size += len(out)
    return "sha256:" + raw.hexdigest(), "sha256:" + gz.hexdigest(), size


class Layout:
    """An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- creation ----------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path) -> Layout:
        root = Path(root)
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        if not (root / "index.json").exists():
            (root / "index.json").write_bytes(
                canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}))
        return cls(root)

    @classmethod
    def open(cls, root: Path) -> Layout:
        root = Path(root)
        if not (root / "oci-layout").is_file() or not (root / "index.json").is_file():
            raise InputError(f"{root} is not an OCI image layout (no oci-layout/index.json)",
                             file=str(root), hint="pass a directory written by an OCI exporter")
        return cls(root)

    # -- blobs -------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algo, _, hexd = digest.partition(":")
        return self.root / "blobs" / algo / hexd

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_bytes(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            self._atomic(path, data)
        return Descriptor(media_type, digest, len(data))

    def put_json(self, obj: Any, media_type: str) -> Descriptor:
        return self.put_bytes(canonical_json(obj), media_type)

    def open_blob_writer(self) -> _BlobWriter:
        return _BlobWriter(self)

    def read_bytes(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def read_json(self, digest: str) -> Any:
        return json.loads(self.read_bytes(digest))

    def _atomic(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add_gzip_layer(self, tar_path: Path, *, level: int = 6) -> tuple[Descriptor, str]:
        """Compress an uncompressed layer tar into a blob: (descriptor, diff_id)."""
        with open(tar_path, "rb") as src, self.open_blob_writer() as w:
            diff_id, _, _ = gzip_stream(src, w, level=level)
        return w.descriptor(MT_LAYER_GZIP), diff_id

    # -- index -------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root / "index.json").read_bytes())
        return data

    def set_index(self, manifests: Iterable[Descriptor]) -> None:
        """Rewrite index.json with these descriptors (in a fixed order: by ref name, digest)."""
        items = sorted(manifests, key=lambda d: (d.annotations.get(REF_ANNOTATION, ""),
                                                 d.digest))
        self._atomic(self.root / "index.json", canonical_json(
            {"schemaVersion": 2, "mediaType": MT_INDEX,
             "manifests": [d.to_json() for d in items]}))

    def tag(self, desc: Descriptor, name: str) -> None:
        """Point ref name `name` at `desc` (replacing an older descriptor of that name)."""
        keep = [Descriptor.from_json(m) for m in self.index().get("manifests", [])
                if (m.get("annotations") or {}).get(REF_ANNOTATION) != name]
        tagged = Descriptor(desc.media_type, desc.digest, desc.size, desc.platform,
                            {**desc.annotations, REF_ANNOTATION: name})
        self.set_index([*keep, tagged])

    def refs(self) -> dict[str, Descriptor]:
        out = {}
        for m in self.index().get("manifests", []):
            d = Descriptor.from_json(m)
            out[d.annotations.get(REF_ANNOTATION, d.digest)] = d
        return out

    # -- images ------------------------------------------------------------------------
    def write_image(self, layers: list[tuple[Descriptor, str]], config: dict[str, Any],
                    platform: str = "linux/amd64",
                    annotations: dict[str, str] | None = None) -> Descriptor:
        """Write config + manifest for `layers` [(blob descriptor, diff_id)], return the
        manifest descriptor (with its platform). `config` is completed with os/architecture
        and rootfs.diff_ids."""
        plat = platform_of(platform)
        cfg = dict(config)
        cfg["architecture"] = plat["architecture"]
        cfg["os"] = plat["os"]
        if "variant" in plat:
            cfg["variant"] = plat["variant"]
        cfg["rootfs"] = {"type": "layers", "diff_ids": [diff for _, diff in layers]}
        cfg_desc = self.put_json(cfg, MT_CONFIG)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": cfg_desc.to_json(),
            "layers": [d.to_json() for d, _ in layers],
        }
        if annotations:
            manifest["annotations"] = dict(annotations)
        m = self.put_json(manifest, MT_MANIFEST)
        return Descriptor(m.media_type, m.digest, m.size, plat)

    def write_index(self, manifests: list[Descriptor]) -> Descriptor:
        """An image index blob over per-platform manifests (sorted by platform)."""
        items = sorted(manifests, key=lambda d: (platform_str(d.platform), d.digest))
        body = {"schemaVersion": 2, "mediaType": MT_INDEX,
                "manifests": [Descriptor(d.media_type, d.digest, d.size, d.platform).to_json()
                              for d in items]}
        return self.put_json(body, MT_INDEX)

    def resolve(self, ref: str | None = None, platform: str | None = None) -> Descriptor:
        """The per-platform manifest that ref name `ref` (or the only entry) points at,
        descending through image indexes."""
        refs = self.refs()
        if ref is None:
            if len(refs) != 1:
                raise InputError(f"{self.root}: index.json has {len(refs)} entries; name one",
                                 file=str(self.root / "index.json"), hint="pass a ref name")
            desc = next(iter(refs.values()))
        elif ref in refs:
            desc = refs[ref]
        else:
            raise InputError(f"{self.root}: no image named '{ref}'",
                             file=str(self.root / "index.json"),
                             hint=f"use one of: {', '.join(sorted(refs)) or '(none)'}")
        return self._descend(desc, platform)

    def _descend(self, desc: Descriptor, platform: str | None) -> Descriptor:
        while desc.media_type in INDEX_TYPES:
            children = [Descriptor.from_json(m) for m in self.read_json(desc.digest)["manifests"]]
            children = [c for c in children if (c.platform or {}).get("architecture") != "unknown"]
            if platform is not None:
                children = [c for c in children if platform_str(c.platform) == platform
                            or platform_str(c.platform).startswith(platform + "/")]
            if len(children) != 1:
                raise InputError(f"{self.root}: index {desc.digest[:19]} has {len(children)} "
                                 f"manifests for platform {platform or '(any)'}",
                                 file=str(self.root), hint="name the platform")
            desc = children[0]
        return desc

    def manifest(self, desc: Descriptor) -> dict[str, Any]:
        data: dict[str, Any] = self.read_json(desc.digest)
        return data

    def image(self, ref: str | None = None, platform: str | None = None) -> Image:
        desc = self.resolve(ref, platform)
        manifest = self.manifest(desc)
        config = self.read_json(manifest["config"]["digest"])
        layers = [Descriptor.from_json(x) for x in manifest["layers"]]
        return Image(self, desc, manifest, config, layers)


@dataclass
class Image:
    layout: Layout
    descriptor: Descriptor
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[Descriptor]

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))


class _BlobWriter:
    """Stream bytes into a temp file; on close, name it by its sha256 (never half-written)."""

    def __init__(self, layout: Layout) -> None:
        d = layout.root / "blobs" / "sha256"
        d.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=d, prefix=".tmp-")
        self._layout = layout
        self._fh = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def __enter__(self) -> _BlobWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._fh.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        self.digest = "sha256:" + self._hash.hexdigest()
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self._layout.blob_path(self.digest))

    def descriptor(self, media_type: str) -> Descriptor:
        return Descriptor(media_type, self.digest, self.size)


def iter_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def layout_from_dir(src: Path, dst: Path, ref_name: str) -> Descriptor:
    """Turn a containers/image `dir:` export (manifest.json + blobs named by hex digest) into
    an OCI layout holding that one image, moving (not copying) the blobs. The manifest bytes
    are kept as they are, so its digest is the engine's."""
    manifest_bytes = (src / "manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    layout = Layout.create(dst)
    for desc in [manifest["config"], *manifest["layers"]]:
        hexd = desc["digest"].split(":", 1)[1]
        target = layout.blob_path(desc["digest"])
        if not target.exists():
            os.replace(src / hexd, target)
    media = manifest.get("mediaType", MT_MANIFEST)
    desc = layout.put_bytes(manifest_bytes, media)
    layout.tag(desc, ref_name)
    return desc

