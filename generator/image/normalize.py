"""Deterministic normalization of an image: the form whose manifest digest gen promises.

Per layer (a tar), the normalized form:
- entries in byte order of their path (a hard link is placed right after its target when the
  target would sort later, so the tar still extracts);
- mtimes clamped to SOURCE_DATE_EPOCH (later times become the epoch, earlier ones stay);
- owner *names* cleared (uid/gid numbers are kept: they are content);
- atime/ctime and other PAX noise dropped; extended attributes (SCHILY.xattr.*) kept;
- POSIX pax format written by one fixed writer, stored *uncompressed*
  (`application/vnd.oci.image.layer.v1.tar`): the digest is then a function of the files
  alone, not of a compressor's version or level, and nothing is recompressed on the way.

Never changed: file contents, sizes, modes, uid/gid, link targets, device numbers, xattrs,
whiteouts, the set of entries. So normalization can hide a timestamp difference but never a
content difference. Each normalization returns what it changed (`NormalizeStats`).

Config: `created` and every `history[].created` set to the epoch; the legacy Docker fields that
describe the build *container* (`container`, `container_config`) are dropped. Everything else
(env, cmd, entrypoint, workdir, labels, history text, os/arch) is kept as the engine wrote it.

A layer whose uncompressed digest (diff_id, verified by hashing it) equals a layer of a known
normalized image (the locked base) is not rewritten: that image's blob is reused as is.
"""

from __future__ import annotations

import gzip
import hashlib
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from generator.core.fsutil import link_or_copy
from generator.image.oci import (
    MT_LAYER_GZIP,
    MT_LAYER_TAR,
    Descriptor,
    Image,
    Layout,
    config_platform,
    platform_str,
)

__all__ = ["NORMALIZER_VERSION", "KnownLayer", "NormalizeStats", "normalize_image",
           "normalize_tar", "open_layer"]

NORMALIZER_VERSION = "1"
CHUNK = 1 << 20
_DROP_PAX = ("atime", "ctime", "mtime", "uname", "gname", "LIBARCHIVE.creationtime")
_LEGACY_CONFIG = ("container", "container_config")


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LayerStats:
    index: int
    entries: int = 0
    mtimes_clamped: int = 0
    owner_names_cleared: int = 0
    pax_dropped: int = 0
    reordered: bool = False
    hardlinks_moved: int = 0
    reused: bool = False  # identical to a known normalized layer: blob reused
    raw_digest: str = ""
    digest: str = ""
    diff_id: str = ""
    size: int = 0  # uncompressed bytes

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class NormalizeStats:
    raw_digest: str = ""  # the engine's manifest digest
    digest: str = ""  # the normalized manifest digest
    config_fields: list[str] = field(default_factory=list)
    layers: list[LayerStats] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "raw_digest": self.raw_digest, "digest": self.digest,
            "config_fields_normalized": self.config_fields,
            "layers": len(self.layers),
            "layers_reused": sum(1 for layer in self.layers if layer.reused),
            "entries": sum(layer.entries for layer in self.layers),
            "mtimes_clamped": sum(layer.mtimes_clamped for layer in self.layers),
            "owner_names_cleared": sum(layer.owner_names_cleared for layer in self.layers),
            "pax_records_dropped": sum(layer.pax_dropped for layer in self.layers),
            "layers_reordered": sum(1 for layer in self.layers if layer.reordered),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class KnownLayer:
    """A layer already in normalized form (e.g. of the locked base): reuse its blob."""

    diff_id: str
    descriptor: Descriptor
    path: Path  # where its compressed blob is


def open_layer(path: Path, media_type: str) -> IO[bytes]:
    if "gzip" in media_type:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if "zstd" in media_type:
        raise ValueError("zstd layers are not supported (build with gzip)")
    return open(path, "rb")


def _decompress_to(src: Path, media_type: str, dst: IO[bytes]) -> tuple[str, int]:
    """Inflate a layer into dst; (diff_id, size) of the uncompressed bytes."""
    h = hashlib.sha256()
    n = 0
    if "gzip" in media_type:
        d = zlib.decompressobj(wbits=47)
        with open(src, "rb") as fh:
            while chunk := fh.read(CHUNK):
                out = d.decompress(chunk)
                while True:
                    h.update(out)
                    n += len(out)
                    dst.write(out)
                    if not d.unused_data:
                        break
                    rest = d.unused_data  # a multi-member gzip stream
                    d = zlib.decompressobj(wbits=47)
                    out = d.decompress(rest)
            out = d.flush()
            h.update(out)
            n += len(out)
            dst.write(out)
    else:
        with open(src, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
                n += len(chunk)
                dst.write(chunk)
    return "sha256:" + h.hexdigest(), n


def _order(members: list[tarfile.TarInfo]) -> tuple[list[tarfile.TarInfo], int]:
    """Sorted by path bytes; a hard link whose target sorts later waits for its target."""
    ordered = sorted(members, key=lambda m: m.name.encode("utf-8", "surrogateescape"))
    out: list[tarfile.TarInfo] = []
    emitted: set[str] = set()
    waiting: dict[str, list[tarfile.TarInfo]] = {}
    moved = 0

    def emit(m: tarfile.TarInfo) -> None:
        out.append(m)
        emitted.add(m.name)
        for w in waiting.pop(m.name, []):
            emit(w)

    for m in ordered:
        if m.islnk() and m.linkname not in emitted:
            waiting.setdefault(m.linkname, []).append(m)
            moved += 1
            continue
        emit(m)
    for rest in waiting.values():  # target not in this layer (links into lower layers)
        out.extend(rest)
    return out, moved


def _clean(m: tarfile.TarInfo, epoch: int, stats: LayerStats) -> tarfile.TarInfo:
    n = tarfile.TarInfo(m.name)
    n.type = m.type
    n.mode = m.mode
    n.uid, n.gid = m.uid, m.gid
    n.size = m.size if m.isreg() else 0
    n.linkname = m.linkname
    n.devmajor, n.devminor = m.devmajor, m.devminor
    mtime = int(m.mtime)
    if mtime > epoch:
        mtime = epoch
        stats.mtimes_clamped += 1
    elif mtime != m.mtime:
        stats.mtimes_clamped += 1  # sub-second part dropped
    n.mtime = mtime
    if m.uname or m.gname:
        stats.owner_names_cleared += 1
    n.uname = n.gname = ""
    keep = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
    dropped = [k for k in m.pax_headers if k not in keep and k in _DROP_PAX]
    stats.pax_dropped += len(dropped)
    n.pax_headers = keep
    return n


def normalize_tar(src: IO[bytes], dst: IO[bytes], epoch: int, stats: LayerStats) -> None:
    """Normalize one uncompressed layer tar (seekable `src`) into `dst`.

    Headers come from tarfile's own writer (`TarInfo.tobuf`, pax format); contents are copied
    in 1 MiB blocks straight from their offsets in `src` (tarfile's copy uses 16 KiB)."""
    with tarfile.open(fileobj=src, mode="r:") as tin:
        members = tin.getmembers()
    stats.entries = len(members)
    ordered, moved = _order(members)
    stats.hardlinks_moved = moved
    stats.reordered = [m.name for m in ordered] != [m.name for m in members]
    written = 0
    for m in ordered:
        clean = _clean(m, epoch, stats)
        header = clean.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        dst.write(header)
        written += len(header)
        if m.isreg() and m.size:
            src.seek(m.offset_data)
            left = m.size
            while left:
                chunk = src.read(min(left, CHUNK))
                if not chunk:
                    raise ValueError(f"layer ends inside {m.name!r}")
                dst.write(chunk)
                left -= len(chunk)
            pad = -m.size % tarfile.BLOCKSIZE
            if pad:
                dst.write(bytes(pad))
            written += m.size + pad
    end = bytes(2 * tarfile.BLOCKSIZE)
    written += len(end)
    end += bytes(-written % tarfile.RECORDSIZE)
    dst.write(end)


class _HashWriter:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, data: bytes, /) -> int:
        self.h.update(data)
        self.n += len(data)
        return self.fh.write(data)


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return "sha256:" + h.hexdigest(), n


def _normalize_layer(image: Image, i: int, desc: Descriptor, dst: Layout, epoch: int,
                     known: dict[str, KnownLayer], tmpdir: Path) -> tuple[Descriptor, str,
                                                                           LayerStats]:
    stats = LayerStats(index=i, raw_digest=desc.digest)
    src_path = image.layout.blob_path(desc.digest)
    declared = image.diff_ids[i] if i < len(image.diff_ids) else ""
    compressed = "gzip" in desc.media_type or "zstd" in desc.media_type
    if compressed:
        raw_tar = tmpdir / f"raw-{i}.tar"
        with open(raw_tar, "wb") as raw:
            diff_id, size = _decompress_to(src_path, desc.media_type, raw)
    else:
        raw_tar = src_path
        diff_id, size = _hash_file(src_path)
    try:
        if declared and diff_id != declared:
            raise ValueError(f"layer {i} of {image.digest}: its content hashes to {diff_id}, "
                             f"the config says {declared}")
        stats.size = size
        k = known.get(diff_id)
        if k is not None:
            target = dst.blob_path(k.descriptor.digest)
            if not target.exists():  # the base's blob, verified in the store: shared
                link_or_copy(k.path, target)
            stats.reused = True
            stats.digest, stats.diff_id = k.descriptor.digest, diff_id
            stats.entries = -1  # not re-read: byte-identical to a normalized layer
            return k.descriptor, diff_id, stats
        with open(raw_tar, "rb") as raw, dst.open_blob_writer() as w:
            normalize_tar(raw, w, epoch, stats)  # type: ignore[arg-type]
    finally:
        if compressed:
            raw_tar.unlink(missing_ok=True)
    out = w.descriptor(MT_LAYER_TAR)
    stats.digest = stats.diff_id = out.digest
    return out, out.digest, stats


def normalize_image(image: Image, dst: Layout, *, epoch: int, ref_name: str,
                    known: list[KnownLayer] | None = None) -> tuple[Descriptor, NormalizeStats]:
    """Write the normalized form of `image` into `dst`, tagged `ref_name`."""
    import time

    t0 = time.perf_counter()
    stats = NormalizeStats(raw_digest=image.digest)
    known_map = {k.diff_id: k for k in known or []}
    layers: list[tuple[Descriptor, str]] = []
    with tempfile.TemporaryDirectory(prefix=".norm-", dir=dst.root) as tmp:
        for i, desc in enumerate(image.layers):
            if desc.media_type not in (MT_LAYER_GZIP, MT_LAYER_TAR) and "tar" not in \
                    desc.media_type:
                raise ValueError(f"layer {i}: unsupported media type {desc.media_type}")
            d, diff_id, ls = _normalize_layer(image, i, desc, dst, epoch, known_map, Path(tmp))
            layers.append((d, diff_id))
            stats.layers.append(ls)
    config = dict(image.config)
    when = rfc3339(epoch)
    if config.get("created") != when:
        stats.config_fields.append("created")
    config["created"] = when
    history = []
    changed_hist = 0
    for h in config.get("history", []) or []:
        h = dict(h)
        if h.get("created") != when:
            changed_hist += 1
        h["created"] = when
        history.append(h)
    if history:
        config["history"] = history
    if changed_hist:
        stats.config_fields.append(f"history[].created ({changed_hist})")
    for key in _LEGACY_CONFIG:
        if key in config:
            del config[key]
            stats.config_fields.append(key)
    platform = platform_str(config_platform(config))
    annotations = image.manifest.get("annotations") or None
    desc = dst.write_image(layers, config, platform, annotations=annotations)
    dst.tag(desc, ref_name)
    stats.digest = desc.digest
    stats.seconds = time.perf_counter() - t0
    return desc, stats


def iter_layer_entries(path: Path, media_type: str) -> Iterator[tarfile.TarInfo]:
    with open_layer(path, media_type) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        yield from tar

