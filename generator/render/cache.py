"""The render stat cache (.gen/render-cache.json, never part of the output): an unchanged re-render
skips reading and rendering a task while every input and output file still has the size and
mtime (and inode) recorded when it was last rendered or verified; racily clean entries (changed
within RACY_NS of being signed) are not trusted."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import __version__
from generator.core import state
from generator.core.fsutil import atomic_write, read_file_stat
from generator.lock.lockfiles import TASK_LOCK_FILES
from generator.render.templates import TemplateSet
from generator.spec.files import TaskFiles

__all__ = [
    "CACHE_FILE", "CACHE_VERSION", "COARSE_RACY_NS", "FORK_CHECK_MIN", "MISSING", "RACY_NS",
    "Sig",
]


CACHE_FILE = state.RENDER_CACHE


CACHE_VERSION = 2


# A file's signature: size, mtime (ns), inode. An entry whose files all still have the
# signatures recorded at render time is fresh. Timestamps have a clock-tick granularity, so a
# file whose mtime lies within RACY_NS of the moment its signature was taken could change
# again without its signature changing; such an entry is not trusted ("racily clean", as git
# calls it). Inputs are signed before they are read; outputs are judged against the moment
# the cache was saved (as git judges files against its index's mtime).
RACY_NS = 100_000_000


COARSE_RACY_NS = 2_000_000_000  # file systems with whole-second timestamps


Sig = tuple[int, int, int]  # size, mtime_ns, inode; (-1, -1, -1): the path does not exist


MISSING: Sig = (-1, -1, -1)


def _sig(st: os.stat_result) -> Sig:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _tree_sigs(root: str) -> list[tuple[str, Sig]]:
    """Signatures of root ("") and of every file and directory below it, by relative path.

    Directories are signed too: adding or removing a file changes its directory's mtime, so
    a later check needs no directory listing, only one stat per recorded path.
    """
    try:
        return TaskFiles(root).signatures()
    except (FileNotFoundError, NotADirectoryError):
        return [("", MISSING)]


def _read_locks(lock_dir: str) -> tuple[list[tuple[str, Sig]], dict[str, bytes]]:
    """A task's lock files (the bytes of each one that exists) and their signatures.

    Signed as render reads them: the directory itself (adding or removing a lock file
    changes its mtime) and each lock file by the fstat of the descriptor it was read from.
    A file render does not read there cannot change the output and is not signed.
    """
    try:
        sigs = [("", _sig(os.stat(lock_dir)))]
    except (FileNotFoundError, NotADirectoryError):
        return [("", MISSING)], {}
    data: dict[str, bytes] = {}
    for name in TASK_LOCK_FILES:
        try:
            data[name], st = read_file_stat(f"{lock_dir}/{name}")
        except (FileNotFoundError, NotADirectoryError):
            continue
        sigs.append((name, _sig(st)))
    return sigs, data


def _digest(values: Sequence[int]) -> str:
    return hashlib.blake2b(array("q", values).tobytes(), digest_size=16).hexdigest()


@dataclass
class _Signed:
    """One task's signatures: inputs (signed before reading), lock dir, outputs.

    Once the outputs are known the worker seals it: only the layout (interned, so a chunk
    of results pickles each distinct layout once) and the digest travel back.
    """

    t: int
    inputs: list[tuple[str, Sig]] | None
    locks: list[tuple[str, Sig]] | None
    outputs: list[tuple[str, Sig]] | None = None  # None: signed by the main process
    layout: tuple[tuple[str, ...], ...] | None = None
    digest: str = ""

    def entry(self) -> tuple[tuple[tuple[str, ...], ...], str]:
        if self.layout is not None:
            return self.layout, self.digest
        assert self.inputs is not None and self.locks is not None and self.outputs is not None
        groups = (self.inputs, self.locks, self.outputs)
        layout = tuple(tuple(rel for rel, _ in g) for g in groups)
        return layout, _digest([v for g in groups for _, sig in g for v in sig])

    def seal(self, interned: dict[Any, Any]) -> None:
        layout, self.digest = self.entry()
        self.layout = interned.setdefault(layout, layout)
        self.inputs = self.locks = self.outputs = None


class _Cache:
    """Stat-based render cache: never changes the output, only skips unchanged work.

    Per task: `t` (when its inputs were signed), a layout (the relative paths signed in the
    task dir, its lockfiles/tasks/<id>/ dir and its output dir; shared by tasks with the same
    shape) and a digest of every path's (size, mtime, inode). A check is one stat per path.
    """

    def __init__(self, project: Path, global_key: str, enabled: bool) -> None:
        self.path = project / CACHE_FILE
        self.global_key = global_key
        self.enabled = enabled
        self.layouts: list[tuple[tuple[str, ...], ...]] = []
        self.entries: dict[str, list[Any]] = {}  # task id -> [t, layout index, digest]
        self.saved_ns = 0
        self.changed = False
        if enabled:
            try:
                data = json.loads(self.path.read_bytes())
                if data.get("version") == CACHE_VERSION and data.get("key") == global_key:
                    self.layouts = [tuple(tuple(g) for g in lay) for lay in data["layouts"]]
                    self.entries = data["tasks"]
                    self.saved_ns = data["saved"]
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                self.layouts, self.entries = [], {}
        self._layout_index = {lay: i for i, lay in enumerate(self.layouts)}
        self._suffixes: dict[int, tuple[tuple[str, ...], ...]] = {}

    def fresh(self, task_id: str, task_dir: str, lock_dir: str, out_dir: str) -> bool:
        entry = self.entries.get(task_id) if self.enabled else None
        if not entry:
            return False
        t, index, digest = entry
        suffixes = self._suffixes.get(index)
        if suffixes is None:  # "" -> the dir itself, "a/b" -> "/a/b"
            suffixes = self._suffixes[index] = tuple(
                tuple(f"/{rel}" if rel else "" for rel in group) for group in self.layouts[index])
        values: list[int] = []
        stat = os.stat
        for base, sufs, limit in zip((task_dir, lock_dir, out_dir), suffixes,
                                     (t, t, self.saved_ns), strict=True):
            fine, coarse = limit - RACY_NS, limit - COARSE_RACY_NS
            for suf in sufs:
                try:
                    st = stat(base + suf)
                except (FileNotFoundError, NotADirectoryError):
                    values += MISSING
                    continue
                mtime = st.st_mtime_ns
                if mtime >= coarse and (mtime >= fine or not mtime % 1_000_000_000):
                    return False  # racily clean: cannot be told from a same-tick change
                values += (st.st_size, mtime, st.st_ino)
        return bool(_digest(values) == digest)

    def store(self, task_id: str, signed: _Signed) -> None:
        layout, digest = signed.entry()
        index = self._layout_index.get(layout)
        if index is None:
            index = self._layout_index[layout] = len(self.layouts)
            self.layouts.append(layout)
        self.entries[task_id] = [signed.t, index, digest]
        self.changed = True

    def save(self, keep: Iterable[str]) -> None:
        if not self.enabled:
            return
        keep_set = set(keep)
        if not self.changed and set(self.entries) == keep_set:
            return
        tasks = {k: v for k, v in sorted(self.entries.items()) if k in keep_set}
        used = sorted({v[1] for v in tasks.values()})
        renumber = {old: new for new, old in enumerate(used)}
        data = {"version": CACHE_VERSION, "key": self.global_key, "saved": time.time_ns(),
                "layouts": [self.layouts[i] for i in used],
                "tasks": {k: [v[0], renumber[v[1]], v[2]] for k, v in tasks.items()}}
        atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())


def _global_key(project: Path, templates: TemplateSet, out_dir: Path) -> str:
    config_text = (project / "gen.yaml").read_bytes()
    h = hashlib.sha256()
    h.update(__version__.encode() + b"\0" + config_text + b"\0")
    h.update(templates.fingerprint().encode() + b"\0")
    images = project / "lockfiles" / "images.lock"
    h.update(images.read_bytes() if images.exists() else b"")
    h.update(str(out_dir.resolve()).encode())
    return h.hexdigest()


_FRESH: tuple[_Cache, list[str], str, str, str] | None = None


FORK_CHECK_MIN = 2000  # below this, forking costs more than the stats it spreads


def _fresh_part(i: int, n: int) -> list[str]:
    assert _FRESH is not None
    cache, names, task_root, lock_root, out_root = _FRESH
    return [name for name in names[i::n]
            if cache.fresh(name, f"{task_root}/{name}", f"{lock_root}/{name}",
                           f"{out_root}/{name}")]


def _fresh_names(cache: _Cache, names: list[str], task_root: str, lock_root: str,
                 out_root: str, jobs: int | None) -> set[str]:
    """The tasks whose cache entry is still valid (one stat per signed path).

    Large datasets are checked by forked processes, which inherit the loaded cache.
    """
    global _FRESH
    if not cache.enabled or not cache.entries:
        return set()
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    _FRESH = (cache, names, task_root, lock_root, out_root)
    try:
        if jobs > 1 and len(names) >= FORK_CHECK_MIN and \
                "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                parts = pool.starmap(_fresh_part, [(i, jobs) for i in range(jobs)])
            return {name for part in parts for name in part}
        return set(_fresh_part(0, 1))
    finally:
        _FRESH = None
