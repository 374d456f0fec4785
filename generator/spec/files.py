"""TaskFiles: every file and directory below a task directory, listed once with their stats, so
spec checks, render's copies and the render cache's signatures ask the listing instead of the
file system again."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from stat import S_ISDIR, S_ISLNK

from generator.core.fsutil import read_file, read_text

__all__ = [
    "TaskFiles",
]


class TaskFiles:
    """Every file and directory below a task directory, listed once with their stats.

    Spec checks (does `src` exist, is the tests dir empty), the render's copies and the
    render cache's signatures all ask this listing instead of the file system again.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = os.fspath(root)
        self.stats: dict[str, os.stat_result] = {"": os.stat(self.root)}
        self.links: set[str] = set()
        stats = self.stats
        stack = [""]
        while stack:
            d = stack.pop()
            prefix = f"{d}/" if d else ""
            with os.scandir(f"{self.root}/{d}" if d else self.root) as it:
                for e in it:
                    rel = prefix + e.name
                    st = stats[rel] = e.stat(follow_symlinks=False)
                    mode = st.st_mode
                    if S_ISLNK(mode):
                        self.links.add(rel)
                    elif S_ISDIR(mode):
                        stack.append(rel)

    def _st(self, rel: str) -> os.stat_result | None:
        if rel in self.links:  # as the file system would answer: follow the link
            try:
                return os.stat(os.path.join(self.root, rel))
            except OSError:
                return None
        return self.stats.get(rel)

    def exists(self, rel: str) -> bool:
        return self._st(rel) is not None

    def is_file(self, rel: str) -> bool:
        st = self._st(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_dir(self, rel: str) -> bool:
        st = self._st(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def has_entries(self, rel: str) -> bool:
        prefix = rel + "/"
        return any(k.startswith(prefix) for k in self.stats)

    def files_under(self, rel: str) -> list[str]:
        """Regular files below directory `rel`, sorted; a symlink anywhere is refused."""
        prefix = rel + "/"
        found = []
        for k, st in self.stats.items():
            if k.startswith(prefix):
                if k in self.links:
                    raise OSError(f"{os.path.join(self.root, k)}: symlinks are not allowed "
                                  "in task inputs")
                if stat.S_ISREG(st.st_mode):
                    found.append(k)
        found.sort()
        return found

    def read_bytes(self, rel: str) -> bytes:
        st = self.stats.get(rel)
        return read_file(f"{self.root}/{rel}", st.st_size if st is not None else None)

    def read_text(self, rel: str) -> str:
        """The file's text, as `open(..., encoding="utf-8").read()` gives it."""
        st = self.stats.get(rel)
        return read_text(f"{self.root}/{rel}", st.st_size if st is not None else None)

    def signatures(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(relative path, (size, mtime_ns, inode)) of every entry, the root as ""."""
        return sorted((rel, (st.st_size, st.st_mtime_ns, st.st_ino))
                      for rel, st in self.stats.items())
