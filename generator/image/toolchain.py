"""The test toolchain record of a built image: what gen's sealed grader (docs/grading.md) checks
inside the container, after the agent, before any test runs.

Computed from the image's layers (flattened, whiteouts applied), so it records the image as
built, not as a container left it:

- `boot`: sha256 of the files the bootstrap checks with sha256sum before the interpreter runs:
  the Python binary, every shared library of the image's library directories (symlinks by the
  content they resolve to), /etc/ld.so.cache, bash, sha256sum, git (and /etc/ld.so.preload if
  the image has one);
- `files` / `links`: the same, for the grader's own second check in Python, symlinks by target;
- `trees`: for the standard library, each site-packages directory and git's helpers, a digest
  of every top-level entry (all its files, types and link targets, bytecode caches left out):
  an entry changed, added or removed is named when grading is refused;
- `python`, `site_dirs`, `git`: what the grader runs and which directories it adds to sys.path.

`seal_script` fills a rendered test script's record line with it (gen export, gen validate).
The record is cached per image digest under .gen/build/toolchain/.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.errors import InputError
from generator.core.fsutil import atomic_write
from generator.image.diff import _merge, layer_entries
from generator.image.oci import Descriptor, Layout

__all__ = [
    "RECORD_LINE", "is_sealed", "save_record", "seal_script", "toolchain_for", "toolchain_record",
]

SCHEMA = 1
RECORD_LINE = "GEN_RECORD=  # filled in from the built image by gen export and gen validate"
SEALED_MARKER = b"--gen-sealed"  # the bootstrap's re-exec flag (templates/_sealed.sh.j2)
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._+/@-]+$")
_PY_RE = re.compile(r"^usr/bin/python3\.\d+$")


def _flatten(layout: Layout, desc: Descriptor) -> dict[str, dict[str, Any]]:
    manifest = layout.manifest(desc)
    layers = []
    for raw in manifest["layers"]:
        d = Descriptor.from_json(raw)
        entries, _ = layer_entries(str(layout.blob_path(d.digest)), d.media_type)
        layers.append(entries)
    merged = _merge(layers)
    return {p: e for p, e in merged.items()
            if e.get("type") not in ("whiteout", "opaque") and not p.endswith("/(opaque)")}


class _Tree:
    """The flattened filesystem, with link resolution and implied directories."""

    def __init__(self, entries: dict[str, dict[str, Any]]) -> None:
        self.entries = dict(entries)
        for path in list(entries):
            parent = posixpath.dirname(path)
            while parent and parent not in self.entries:
                self.entries[parent] = {"type": "dir"}
                parent = posixpath.dirname(parent)
        self.children: dict[str, list[str]] = {}
        for path in self.entries:
            if path != ".":
                self.children.setdefault(posixpath.dirname(path), []).append(
                    posixpath.basename(path))

    def resolve(self, path: str, depth: int = 0) -> str | None:
        """The path a (possibly symlinked) path ends at, inside the image; None if dangling."""
        if depth > 40:
            return None
        parts, cur = path.split("/"), ""
        for i, part in enumerate(parts):
            nxt = f"{cur}/{part}" if cur else part
            e = self.entries.get(nxt)
            if e is None:
                return None
            if e["type"] == "symlink":
                target = e["linkname"]
                base = "" if target.startswith("/") else posixpath.dirname(nxt)
                joined = posixpath.normpath(posixpath.join("/" + base, target)).lstrip("/")
                rest = "/".join(parts[i + 1:])
                return self.resolve(f"{joined}/{rest}" if rest else joined, depth + 1)
            cur = nxt
        return cur

    def content(self, path: str) -> str | None:
        """sha256 of what reading `path` gives (links followed, hard links by their target)."""
        real = self.resolve(path)
        e = self.entries.get(real) if real else None
        if e is None:
            return None
        if e["type"] == "hardlink":
            return self.content(e["linkname"].removeprefix("./").lstrip("/"))
        return str(e["sha256"]) if e["type"] == "file" else None

    def line(self, root: str, rel: str) -> str:
        e = self.entries[f"{root}/{rel}"]
        t = e["type"]
        if t == "symlink":
            return f"{rel}\0l\0{e['linkname']}\n"
        if t == "dir":
            return f"{rel}\0d\0\n"
        if t in ("file", "hardlink"):
            return f"{rel}\0f\0{self.content(f'{root}/{rel}')}\n"
        mode = {"char": 0o020000, "block": 0o060000, "fifo": 0o010000}.get(t, 0)
        return f"{rel}\0o\0{mode:o}\n"

    def child_digest(self, root: str, name: str) -> str:
        """As the grader's child_digest: the entry, then os.walk's pre-order, __pycache__ out."""
        h = hashlib.sha256()
        h.update(self.line(root, name).encode("utf-8", "surrogateescape"))

        def walk(rel: str) -> None:
            names = sorted(n for n in self.children.get(f"{root}/{rel}", [])
                           if not (n == "__pycache__"
                                   and self.entries[f"{root}/{rel}/{n}"]["type"] == "dir"))
            for n in names:
                h.update(self.line(root, f"{rel}/{n}").encode("utf-8", "surrogateescape"))
            for n in names:
                if self.entries[f"{root}/{rel}/{n}"]["type"] == "dir":
                    walk(f"{rel}/{n}")

        if self.entries[f"{root}/{name}"]["type"] == "dir":
            walk(name)
        return h.hexdigest()

    def tree(self, root: str) -> dict[str, str]:
        return {n: self.child_digest(root, n) for n in sorted(self.children.get(root, []))
                if n != "__pycache__"}


def toolchain_record(layout: Layout, desc: Descriptor) -> dict[str, Any]:
    """The record of one image (see the module docstring). Raises InputError when the image
    has no python3 (sealed grading runs pytest under the image's own interpreter)."""
    t = _Tree(_flatten(layout, desc))
    real = t.resolve("usr/bin/python3")
    if real is None or not _PY_RE.match(real):  # no python3 link: the newest python3.N
        found = sorted((p for p in t.children.get("usr/bin", []) if _PY_RE.match(f"usr/bin/{p}")),
                       key=lambda n: int(n.rsplit(".", 1)[1]))
        real = f"usr/bin/{found[-1]}" if found else None
    if real is None or t.entries[real]["type"] != "file":
        raise InputError(f"image {desc.digest[:19]}: no /usr/bin/python3 interpreter, so its "
                         "tests cannot be graded sealed", file="images.json",
                         hint="install python3 in the task's image (environment.apt)")
    version = real.removeprefix("usr/bin/python")
    stdlib = f"usr/lib/python{version}"
    site = [d for d in (f"usr/local/lib/python{version}/dist-packages",
                        f"usr/local/lib/python{version}/site-packages",
                        "usr/lib/python3/dist-packages", f"{stdlib}/dist-packages")
            if t.entries.get(d, {}).get("type") == "dir"]
    boot: dict[str, str] = {}
    links: dict[str, str] = {}

    def add(path: str) -> None:
        e = t.entries.get(path)
        digest = t.content(path)
        if e is None or digest is None or not _SAFE_PATH.match(path):
            return
        boot[path] = digest
        if e["type"] == "symlink":
            links[path] = e["linkname"]

    add(real)
    for libdir in sorted(p for p in t.children.get("usr/lib", []) if p.endswith("-linux-gnu")):
        for name in sorted(t.children.get(f"usr/lib/{libdir}", [])):
            if ".so" in name:
                add(f"usr/lib/{libdir}/{name}")
    for extra in ("usr/lib64/ld-linux-x86-64.so.2", "etc/ld.so.cache", "etc/ld.so.preload",
                  "usr/bin/bash", "usr/bin/sha256sum", "usr/bin/git"):
        add(extra)
    trees = {d: t.tree(d) for d in [stdlib, *site, "usr/lib/git-core"]
             if t.entries.get(d, {}).get("type") == "dir"}
    return {"schema": SCHEMA, "image": desc.digest, "python": "/" + real,
            "site_dirs": site, "git": "/usr/bin/git" if "usr/bin/git" in boot else None,
            "boot": boot, "files": {p: d for p, d in boot.items() if p not in links},
            "links": links, "trees": trees}


def _cache_path(project: Path, digest: str) -> Path:
    return Path(project) / state.BUILD_TOOLCHAIN / f"{digest.split(':', 1)[1]}.json"


def save_record(project: Path, record: Mapping[str, Any]) -> None:
    """Cache a record under its image digest (what toolchain_for reads first)."""
    cache = _cache_path(project, str(record["image"]))
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cache, (json.dumps(record, sort_keys=True) + "\n").encode())


def toolchain_for(project: Path, layout_rel: str, digest: str) -> dict[str, Any]:
    """The record of a built image (its OCI layout under the project), cached per digest."""
    cache = _cache_path(project, digest)
    try:
        record: dict[str, Any] = json.loads(cache.read_text())
        if record.get("schema") == SCHEMA and record.get("image") == digest:
            return record
    except (OSError, ValueError):
        pass
    where = Path(project) / layout_rel
    if not (where / "index.json").is_file():
        raise InputError(f"image {digest[:19]}: its OCI layout {layout_rel} is missing, and the "
                         "sealed test scripts need the toolchain record made from it",
                         file=str(layout_rel), hint="run `gen build`")
    layout = Layout.open(where)
    record = toolchain_record(layout, layout.resolve(None))
    if record["image"] != digest:
        raise InputError(f"the OCI layout {layout_rel} holds {record['image']}, not {digest}",
                         file=layout_rel, hint="re-run gen build")
    save_record(project, record)
    return record


def is_sealed(script: bytes) -> bool:
    """Whether a rendered test script grades sealed (before or after its record is filled)."""
    return SEALED_MARKER in script


def seal_script(text: str, record: Mapping[str, Any]) -> str:
    """The rendered script with its record line filled in. A script without the line (an
    override template that does not grade sealed) comes back unchanged."""
    if RECORD_LINE not in text.splitlines():
        return text
    boot = "\n".join(f"{d}  /{p}" for p, d in sorted(record["boot"].items()))
    filled = (f"GEN_RECORD={shlex.quote(json.dumps(record, sort_keys=True))}\n"
              f"GEN_BOOT={shlex.quote(boot)}\n"
              f"GEN_PYTHON={shlex.quote(record['python'])}")
    return "\n".join(filled if ln == RECORD_LINE else ln for ln in text.split("\n"))
