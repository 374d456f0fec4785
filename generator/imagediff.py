"""Explain why two images differ: which layer, which files, what about them (like diffoci).

Comparison never decompresses-and-recompresses. Manifests are compared first; equal digests
end it. Layers are paired by position; a pair with equal digests is skipped without reading a
byte of it. For a pair that differs, each side is streamed once (inflated if it is gzip) and
every entry is summarized (type, mode, uid/gid, owner names, size, mtime, link target, xattrs,
sha256 of the content); the two summaries are compared. The sides of all differing layers are
read in parallel processes (one per core). The config is compared field by field.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.normalize import open_layer
from generator.oci import Descriptor, Layout

__all__ = ["EntryDiff", "ImageDiff", "LayerDiff", "compare_images", "layer_entries"]

ATTRS = ("type", "mode", "uid", "gid", "uname", "gname", "size", "mtime", "linkname", "xattrs",
         "sha256")
_TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
          tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


def layer_entries(path: str, media_type: str) -> tuple[dict[str, dict[str, Any]], int]:
    """{path: attributes} of one layer, streamed once; plus the uncompressed byte count."""
    out: dict[str, dict[str, Any]] = {}
    total = 0
    with open_layer(Path(path), media_type) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        for m in tar:
            digest = ""
            if m.isreg():
                h = hashlib.sha256()
                src = tar.extractfile(m)
                assert src is not None
                while chunk := src.read(1 << 20):
                    h.update(chunk)
                digest = h.hexdigest()
                total += m.size
            name = m.name.removeprefix("./").rstrip("/") or "."
            out[name] = {
                "type": _TYPES.get(m.type, repr(m.type)), "mode": oct(m.mode), "uid": m.uid,
                "gid": m.gid, "uname": m.uname, "gname": m.gname, "size": m.size,
                "mtime": m.mtime, "linkname": m.linkname,
                "xattrs": {k: v for k, v in sorted(m.pax_headers.items())
                           if k.startswith("SCHILY.xattr.")},
                "sha256": digest,
            }
    return out, total


@dataclass
class EntryDiff:
    path: str
    change: str  # added | removed | changed
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # attr -> (a, b)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "change": self.change,
                "fields": {k: {"a": a, "b": b} for k, (a, b) in self.fields.items()}}

    def text(self) -> str:
        if self.change != "changed":
            return f"{self.change:8} /{self.path}"
        parts = []
        for k, (a, b) in self.fields.items():
            if k == "sha256":
                parts.append(f"content {a[:12]} -> {b[:12]}")
            else:
                parts.append(f"{k} {a!r} -> {b!r}")
        return f"changed  /{self.path}: " + "; ".join(parts)


@dataclass
class LayerDiff:
    index: int
    a: str  # digests
    b: str
    entries: list[EntryDiff] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "a": self.a, "b": self.b, "note": self.note,
                "entries": [e.to_json() for e in self.entries]}


@dataclass
class ImageDiff:
    a: str
    b: str
    identical: bool
    config: list[dict[str, Any]] = field(default_factory=list)
    layers: list[LayerDiff] = field(default_factory=list)
    layers_skipped: int = 0  # equal digests: not read
    bytes_read: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "identical": self.identical, "config": self.config,
                "layers": [x.to_json() for x in self.layers],
                "layers_skipped_equal": self.layers_skipped, "bytes_read": self.bytes_read,
                "seconds": round(self.seconds, 3)}

    def text(self, limit: int = 50) -> list[str]:
        if self.identical:
            return [f"identical: {self.a}"]
        lines = [f"differ: {self.a} vs {self.b}"]
        for c in self.config:
            lines.append(f"  config {c['field']}: {json.dumps(c['a'])} -> {json.dumps(c['b'])}")
        for layer in self.layers:
            n = len(layer.entries)
            lines.append(f"  layer {layer.index}: {layer.a[:19]} vs {layer.b[:19]}"
                         + (f" ({layer.note})" if layer.note else "")
                         + f": {n} entr{'y differs' if n == 1 else 'ies differ'}")
            for e in layer.entries[:limit]:
                lines.append("    " + e.text())
            if len(layer.entries) > limit:
                lines.append(f"    ... and {len(layer.entries) - limit} more (see --json)")
        if self.layers_skipped:
            lines.append(f"  {self.layers_skipped} layer(s) identical (skipped without reading)")
        return lines


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list) and obj and all(isinstance(x, dict) for x in obj):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = obj
    return out


def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    fa, fb = _flatten(a), _flatten(b)
    out = []
    for k in sorted(set(fa) | set(fb)):
        if k.startswith("rootfs.diff_ids"):
            continue  # reported per layer
        if fa.get(k, None) != fb.get(k, None) or (k in fa) != (k in fb):
            out.append({"field": k, "a": fa.get(k), "b": fb.get(k)})
    return out


def _entry_diff(ea: dict[str, dict[str, Any]],
                eb: dict[str, dict[str, Any]]) -> list[EntryDiff]:
    out = []
    for path in sorted(set(ea) | set(eb)):
        if path not in eb:
            out.append(EntryDiff(path, "removed"))
        elif path not in ea:
            out.append(EntryDiff(path, "added"))
        else:
            fields = {k: (ea[path][k], eb[path][k]) for k in ATTRS if ea[path][k] != eb[path][k]}
            if fields:
                out.append(EntryDiff(path, "changed", fields))
    return out


def compare_images(la: Layout, da: Descriptor, lb: Layout, db: Descriptor, *,
                   workers: int | None = None) -> ImageDiff:
    """Compare two images (each a manifest in an OCI layout)."""
    import time

    t0 = time.perf_counter()
    diff = ImageDiff(da.digest, db.digest, da.digest == db.digest)
    if diff.identical:
        diff.seconds = time.perf_counter() - t0
        return diff
    ma, mb = la.manifest(da), lb.manifest(db)
    ca, cb = la.read_json(ma["config"]["digest"]), lb.read_json(mb["config"]["digest"])
    diff.config = _config_diff(ca, cb)
    layers_a = [Descriptor.from_json(x) for x in ma["layers"]]
    layers_b = [Descriptor.from_json(x) for x in mb["layers"]]
    jobs: list[tuple[int, str, Layout, Descriptor]] = []
    pairs: list[tuple[int, Descriptor | None, Descriptor | None]] = []
    for i in range(max(len(layers_a), len(layers_b))):
        a = layers_a[i] if i < len(layers_a) else None
        b = layers_b[i] if i < len(layers_b) else None
        if a is not None and b is not None and a.digest == b.digest:
            diff.layers_skipped += 1
            continue
        pairs.append((i, a, b))
        if a is not None:
            jobs.append((i, "a", la, a))
        if b is not None:
            jobs.append((i, "b", lb, b))
    results: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
    n_workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    if jobs:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            futs = {(i, side): pool.submit(layer_entries, str(lay.blob_path(d.digest)),
                                           d.media_type) for i, side, lay, d in jobs}
            for k, f in futs.items():
                entries, nbytes = f.result()
                results[k] = entries
                diff.bytes_read += nbytes
    for i, a, b in pairs:
        ld = LayerDiff(i, a.digest if a else "(none)", b.digest if b else "(none)")
        if a is None or b is None:
            ld.note = "only in " + ("b" if a is None else "a")
        ea, eb = results.get((i, "a"), {}), results.get((i, "b"), {})
        ld.entries = _entry_diff(ea, eb)
        if not ld.entries and a is not None and b is not None:
            ld.note = "same entries, different bytes (tar encoding, order or compression)"
        diff.layers.append(ld)
    diff.seconds = time.perf_counter() - t0
    return diff
