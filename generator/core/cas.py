"""The content-addressed store: `<store>/sha256/<hex>`, every file verified by its hash.

A file appears under its final name only after its bytes hashed to that name (streamed into a
temp file in the same directory, then renamed). The store is `<project>/.gen/cas` unless
GEN_CAS points elsewhere (share one store between projects, CI jobs and tests).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from generator.core import state

__all__ = ["Store", "default_store", "sha256_file"]

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, hexdigest: str) -> Path:
        return self.root / "sha256" / hexdigest

    def has(self, hexdigest: str, *, verify: bool = True) -> bool:
        p = self.path(hexdigest)
        if not p.is_file():
            return False
        if verify and sha256_file(p) != hexdigest:
            p.unlink()  # corrupted on disk: drop it so it is fetched again
            return False
        return True

    @contextmanager
    def writer(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A temp file inside the store (same filesystem, so commit() is a rename)."""
        d = self.root / "sha256"
        d.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=d, prefix=".partial-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh, tmp
        finally:
            tmp.unlink(missing_ok=True)

    def commit(self, tmp: Path, hexdigest: str) -> Path:
        final = self.path(hexdigest)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        return final

    def put_stream(self, inp: IO[bytes]) -> str:
        """Store what `inp` yields (hashed while streaming); returns its sha256 hex."""
        h = hashlib.sha256()
        with self.writer() as (fh, tmp):
            while chunk := inp.read(CHUNK):
                h.update(chunk)
                fh.write(chunk)
            fh.flush()
            hexd = h.hexdigest()
            if not self.path(hexd).exists():
                self.commit(tmp, hexd)
        return hexd

    def put_file(self, src: Path) -> str:
        """Copy a local file in; returns its sha256 hex."""
        with open(src, "rb") as inp:
            return self.put_stream(inp)


def default_store(project: Path) -> Store:
    env = os.environ.get("GEN_CAS")
    return Store(Path(env) if env else project / state.CAS)
