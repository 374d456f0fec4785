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
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.image.oci import Descriptor, Layout

__all__ = ["EntryDiff", "ImageDiff", "LayerDiff", "compare_images", "layer_entries"]

ATTRS = ("type", "mode", "uid", "gid", "uname", "gname", "size", "mtime", "linkname", "xattrs",
         "sha256")
_TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "dir",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink", tarfile.CHRTYPE: "char",
          tarfile.BLKTYPE: "block", tarfile.FIFOTYPE: "fifo"}


class _Inflated:
    """Exact-size reads from a (gzip or plain) layer file, inflated in large C-level chunks;
    file contents are hashed from the inflated chunks without copying them."""

    def __init__(self, path: Path, media_type: str) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.z = zlib.decompressobj(wbits=47) if "gzip" in media_type else None
        self.cur = b""
        self.off = 0
        self.eof = False
        self.produced = 0  # uncompressed bytes of the layer read so far

    def _next(self) -> bool:
        while not self.eof:
            chunk = self.fh.read(1 << 20)
            if not chunk:
                self.eof = True
                out = self.z.flush() if self.z is not None else b""
            elif self.z is None:
                out = chunk
            else:
                out = self.z.decompress(chunk)
                while self.z.unused_data:  # concatenated gzip members
                    rest = self.z.unused_data
                    self.z = zlib.decompressobj(wbits=47)
                    out += self.z.decompress(rest)
            if out:
                self.cur, self.off = out, 0
                self.produced += len(out)
                return True
        return False

    def read(self, n: int) -> bytes:
        if len(self.cur) - self.off >= n:
            out = self.cur[self.off:self.off + n]
            self.off += n
            return out
        parts = []
        while n > 0:
            if self.off >= len(self.cur) and not self._next():
                break
            take = min(n, len(self.cur) - self.off)
            parts.append(self.cur[self.off:self.off + take])
            self.off += take
            n -= take
        return b"".join(parts)

    def feed(self, n: int, h: Any | None) -> int:
        """Hash (or with h=None skip) the next n bytes, without copying them."""
        done = 0
        while done < n:
            if self.off >= len(self.cur) and not self._next():
                break
            take = min(n - done, len(self.cur) - self.off)
            if h is not None:
                h.update(memoryview(self.cur)[self.off:self.off + take])
            self.off += take
            done += take
        return done

    def skip(self, n: int) -> None:
        self.feed(n, None)

    def close(self) -> None:
        self.fh.close()


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        sp = data.index(b" ", i)
        length = int(data[i:sp])
        rec = data[sp + 1:i + length - 1]
        k, _, v = rec.partition(b"=")
        out[k.decode("utf-8", "surrogateescape")] = v.decode("utf-8", "surrogateescape")
        i += length
    return out


@dataclass
class _Hdr:
    name: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    type: bytes
    linkname: str
    uname: str
    gname: str


def _num(field: bytes) -> int | None:
    if field[:1] and field[0] & 0x80:
        return None  # base-256: let tarfile decode it
    field = field.strip(b" \0")
    return int(field, 8) if field else 0


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _header(b: bytes) -> _Hdr:
    """A ustar/GNU header, parsed with a few slices (tarfile's parser is 5x slower)."""
    chksum = _num(b[148:156])
    if chksum is None or (chksum != sum(b[:148]) + 256 + sum(b[156:])
                          and chksum != sum(memoryview(b[:148]).cast("b")) + 256
                          + sum(memoryview(b[156:]).cast("b"))):
        raise tarfile.HeaderError("bad checksum")
    nums = [_num(b[100:108]), _num(b[108:116]), _num(b[116:124]), _num(b[124:136]),
            _num(b[136:148])]
    if any(n is None for n in nums):
        t = tarfile.TarInfo.frombuf(b, "utf-8", "surrogateescape")
        return _Hdr(t.name, t.mode, t.uid, t.gid, t.size, t.mtime, t.type, t.linkname,
                    t.uname, t.gname)
    mode, uid, gid, size, mtime = (n or 0 for n in nums)
    name = _str(b[0:100])
    if b[257:265] == b"ustar\x0000":
        prefix = _str(b[345:500])
        if prefix:
            name = prefix + "/" + name
    typ = b[156:157] or tarfile.REGTYPE
    if typ == tarfile.AREGTYPE and name.endswith("/"):
        typ = tarfile.DIRTYPE
    return _Hdr(name, mode, uid, gid, size, mtime, typ, _str(b[157:257]), _str(b[265:297]),
                _str(b[297:329]))


def _blocks(n: int) -> int:
    return (n + 511) // 512 * 512


def layer_entries(path: str, media_type: str) -> tuple[dict[str, dict[str, Any]], int]:
    """{path: attributes} of one layer, streamed once; plus its uncompressed size (bytes).

    A small tar reader of its own (ustar/pax/GNU long names): the content of each file is
    hashed straight from the inflate buffer, so the cost stays close to inflate + sha256."""
    out: dict[str, dict[str, Any]] = {}
    r = _Inflated(Path(path), media_type)
    global_pax: dict[str, str] = {}
    local: dict[str, str] = {}
    try:
        while True:
            header = r.read(512)
            if len(header) < 512 or header == bytes(512):
                break
            info = _header(header)
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                             tarfile.GNUTYPE_LONGLINK):
                data = r.read(info.size)
                r.skip(_blocks(info.size) - info.size)
                if info.type == tarfile.XHDTYPE:
                    local.update(_pax(data))
                elif info.type == tarfile.XGLTYPE:
                    global_pax.update(_pax(data))
                elif info.type == tarfile.GNUTYPE_LONGNAME:
                    local["path"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                else:
                    local["linkpath"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                continue
            pax = {**global_pax, **local}
            local = {}
            name = pax.get("path", info.name)
            size = int(pax["size"]) if "size" in pax else info.size
            regular = info.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
            digest = ""
            if regular:
                h = hashlib.sha256()
                r.feed(size, h)
                digest = h.hexdigest()
                r.skip(_blocks(size) - size)
            elif size:
                r.skip(_blocks(size))
            key = name.removeprefix("./").rstrip("/") or "."
            out[key] = {
                "type": _TYPES.get(info.type, repr(info.type)), "mode": oct(info.mode),
                "uid": int(pax.get("uid", info.uid)), "gid": int(pax.get("gid", info.gid)),
                "uname": pax.get("uname", info.uname), "gname": pax.get("gname", info.gname),
                "size": size if regular else 0,
                "mtime": float(pax["mtime"]) if "mtime" in pax else info.mtime,
                "linkname": pax.get("linkpath", info.linkname),
                "xattrs": {k: v for k, v in sorted(pax.items())
                           if k.startswith("SCHILY.xattr.")},
                "sha256": digest,
            }
    finally:
        r.close()
    return out, r.produced


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
            fields = {k: (ea[path].get(k), eb[path].get(k)) for k in ATTRS
                      if ea[path].get(k) != eb[path].get(k)}
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


# --------------------------------------------------------------------------------------
# Cross-engine: compare the resulting filesystems, not the layer layout
# --------------------------------------------------------------------------------------

RUNTIME_CONFIG = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
                  "StopSignal", "Shell")


def _merge(layers: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Apply layers bottom-up with OCI whiteout rules; whiteouts stay as markers."""
    merged: dict[str, dict[str, Any]] = {}

    def drop_under(prefix: str) -> None:
        for k in [k for k in merged if k.startswith(prefix + "/")]:
            del merged[k]

    for entries in layers:
        for path in sorted(entries):
            parent, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                drop_under(parent)
                merged[f"{parent}/(opaque)"] = {"type": "opaque"}
            elif base.startswith(".wh."):
                target = f"{parent}/{base[4:]}" if parent else base[4:]
                created_above = merged.pop(target, None) is not None
                drop_under(target)
                if not created_above:  # it hides a file of the common lower layers
                    merged[target] = {"type": "whiteout"}
            else:
                if entries[path]["type"] != "dir":
                    drop_under(path)
                merged[path] = entries[path]
    return merged


def compare_flattened(la: Layout, da: Descriptor, lb: Layout, db: Descriptor) -> ImageDiff:
    """Compare what two images put on disk above their common layers, and their runtime
    config (env, cmd, workdir, user...): the check for builds by different engines, whose
    layer layouts differ (buildah: one layer per Dockerfile, docker: one per step)."""
    import time

    t0 = time.perf_counter()
    diff = ImageDiff(da.digest, db.digest, False)
    ma, mb = la.manifest(da), lb.manifest(db)
    ca, cb = la.read_json(ma["config"]["digest"]), lb.read_json(mb["config"]["digest"])
    ra = {k: v for k, v in (ca.get("config") or {}).items() if k in RUNTIME_CONFIG}
    rb = {k: v for k, v in (cb.get("config") or {}).items() if k in RUNTIME_CONFIG}
    diff.config = [{"field": f"config.{c['field']}", "a": c["a"], "b": c["b"]}
                   for c in _config_diff(ra, rb)]
    layers_a = [Descriptor.from_json(x) for x in ma["layers"]]
    layers_b = [Descriptor.from_json(x) for x in mb["layers"]]
    k = 0
    while k < min(len(layers_a), len(layers_b)) and layers_a[k].digest == layers_b[k].digest:
        k += 1
    diff.layers_skipped = k
    jobs = [("a", la, d) for d in layers_a[k:]] + [("b", lb, d) for d in layers_b[k:]]
    results: list[dict[str, dict[str, Any]]] = []
    if jobs:
        with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
            futs = [pool.submit(layer_entries, str(lay.blob_path(d.digest)), d.media_type)
                    for _, lay, d in jobs]
            for f in futs:
                entries, n = f.result()
                results.append(entries)
                diff.bytes_read += n
    na = len(layers_a) - k
    merged_a, merged_b = _merge(results[:na]), _merge(results[na:])
    ld = LayerDiff(k, f"{na} layer(s) above {k}", f"{len(layers_b) - k} layer(s) above {k}",
                   note="filesystems above the common layers, flattened")
    ld.entries = _entry_diff(merged_a, merged_b)
    if ld.entries:
        diff.layers.append(ld)
    diff.identical = not ld.entries and not diff.config
    diff.seconds = time.perf_counter() - t0
    return diff
