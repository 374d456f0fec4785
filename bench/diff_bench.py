"""Benchmark: explaining and normalizing a large image, next to the machine's own ceiling.

    python bench/diff_bench.py [--layers 4] [--layer-mb 96] [--keep DIR]

Builds two synthetic OCI images (gzip layers, half of the bytes text-like, half random; many
small files plus some large ones). In image B one layer is identical to A (must be skipped
without being read) and the others differ in a few files. Prints:
- the ceiling: zlib inflate + sha256 of the same layer bytes, in C (MB/s of uncompressed data),
  per core and for all cores;
- explain: `compare_images` throughput over the differing layers (all cores across layers) and
  its ratio to the ceiling (target >= 80%);
- the bytes actually read (equal layers are skipped: 0 bytes of them);
- normalize: `normalize_image` throughput on one image.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import random
import shutil
import sys
import tarfile
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.image.diff import compare_images, layer_entries  # noqa: E402
from generator.image.normalize import normalize_image  # noqa: E402
from generator.image.oci import MT_LAYER_GZIP, Descriptor, Layout  # noqa: E402

EPOCH = 1_700_000_000


def make_layer(path: Path, size_mb: int, seed: int, mutate: int) -> None:
    """A tar of ~size_mb MB: small text files and a few big binaries; `mutate` files differ."""
    rnd = random.Random(seed)
    words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 9)))
             for _ in range(2000)]
    target = size_mb << 20
    written = 0
    i = 0
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        while written < target:
            big = i % 50 == 0
            if big:
                data = random.Random(seed * 1000 + i).randbytes(2 << 20)
            else:
                r = random.Random(seed * 1000 + i)
                data = b" ".join(r.choice(words) for _ in range(r.randint(200, 3000)))
            if i < mutate:
                data += b"\nmutated\n"
            info = tarfile.TarInfo(f"usr/share/bench/d{i // 100:04d}/f{i:06d}")
            info.size = len(data)
            info.mtime = EPOCH
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
            written += len(data)
            i += 1


def gz(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw, mtime=0) as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)


def ceiling_one(path: str) -> int:
    d = zlib.decompressobj(wbits=47)
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            out = d.decompress(chunk)
            h.update(out)
            n += len(out)
    out = d.flush()
    h.update(out)
    return n + len(out)


def image(layout: Layout, blobs: list[Path]) -> Descriptor:
    layers = []
    for b in blobs:
        with open(b, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        dst = layout.blob_path("sha256:" + digest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(b, dst)
        with gzip.open(b, "rb") as fh:
            h = hashlib.sha256()
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        layers.append((Descriptor(MT_LAYER_GZIP, "sha256:" + digest, b.stat().st_size),
                       "sha256:" + h.hexdigest()))
    desc = layout.write_image(layers, {"created": "2023-11-14T22:13:20Z"}, "linux/amd64")
    layout.tag(desc, "img")
    return desc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--layer-mb", type=int, default=96)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="gen-diff-bench-"))
    try:
        print(f"setup: {args.layers} layers of ~{args.layer_mb} MB, two images ...", flush=True)
        a_blobs, b_blobs = [], []
        for i in range(args.layers):
            for side, mutate in (("a", 0), ("b", 0 if i == 0 else 3)):
                tar = work / f"{side}{i}.tar"
                make_layer(tar, args.layer_mb, seed=i, mutate=mutate)
                blob = work / f"{side}{i}.tar.gz"
                gz(tar, blob)
                tar.unlink()
                (a_blobs if side == "a" else b_blobs).append(blob)
        la, lb = Layout.create(work / "A"), Layout.create(work / "B")
        da, db = image(la, a_blobs), image(lb, b_blobs)
        differing = [str(b) for b in a_blobs[1:] + b_blobs[1:]]

        t0 = time.perf_counter()
        n = ceiling_one(differing[0])
        one = n / (time.perf_counter() - t0) / 1e6
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=cores) as pool:
            total = sum(pool.map(ceiling_one, differing))
        all_cores = total / (time.perf_counter() - t0) / 1e6

        # one mismatching layer, one core, against the one-core ceiling on the same file
        best_ratio = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            ceiling_one(differing[0])
            c = time.perf_counter() - t0
            t0 = time.perf_counter()
            layer_entries(differing[0], MT_LAYER_GZIP)
            best_ratio = max(best_ratio, c / (time.perf_counter() - t0))

        diff = compare_images(la, da, lb, db)
        rate = diff.bytes_read / diff.seconds / 1e6
        changed = sum(len(x.entries) for x in diff.layers)
        print(f"ceiling (inflate + sha256, C): {one:.0f} MB/s per core, {all_cores:.0f} MB/s "
              f"on {cores} cores")
        print(f"explain one mismatching layer (one core): {100 * best_ratio:.0f}% of the "
              "one-core ceiling on the same bytes (target >= 80%)")
        print(f"explain all: {diff.bytes_read / 1e6:.0f} MB of differing layers in "
              f"{diff.seconds:.2f}s = {rate:.0f} MB/s = {100 * rate / all_cores:.0f}% of the "
              f"{cores}-core ceiling (layers spread over the cores); {changed} differing files "
              "found")
        print(f"skipped without reading: {diff.layers_skipped} equal layer(s); bytes read "
              f"{diff.bytes_read / 1e6:.0f} MB = the differing layers' {total / 1e6:.0f} MB "
              "(equal layers contribute 0)")
        out = Layout.create(work / "N")
        t0 = time.perf_counter()
        _, stats = normalize_image(la.image("img"), out, epoch=EPOCH, ref_name="n")
        secs = time.perf_counter() - t0
        size = sum(x.size for x in stats.layers)
        print(f"normalize: {size / 1e6:.0f} MB in {secs:.2f}s = {size / secs / 1e6:.0f} MB/s "
              f"(one core: layers in sequence)")
    finally:
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
