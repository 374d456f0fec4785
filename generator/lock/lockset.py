"""All of a project's locks read at once (LockSet, read_lockset), and what each lock is resolved
from, shared by gen lock (which records it) and lock --check / render (which compare it): the
digest of an apt, Python or source lock's inputs, and the Python target (interpreter and glibc)
wheels are resolved for, read from the image's own locked packages."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core.fsutil import decode_text, read_text
from generator.lock.lockfiles import (
    APT_LOCK,
    PYTHON_LOCK,
    SOURCE_LOCK,
    TASK_LOCK_FILES,
    AptLock,
    AptPackage,
    BaseLock,
    ImageLock,
    PythonLock,
    SourceLock,
    base_lock_path,
    input_digest,
    parse_apt_lock,
    parse_base_lock,
    parse_image_lock,
    parse_python_lock,
    parse_source_lock,
)

__all__ = [
    "PYTHON_TARGETS",
    "LockSet",
    "apt_input",
    "python_input",
    "python_target",
    "read_lockset",
    "source_input",
]


@dataclass(frozen=True)
class LockSet:
    root: Path
    images: ImageLock
    # parsed locks by (parser, text): tasks with the same packages share one lock text, so
    # a large render parses each distinct text once (parsing is pure; errors are not cached)
    _parsed: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False, repr=False)
    # lock files a caller already read (render reads and signs them in one go): used once
    _read_ahead: dict[tuple[str, str], bytes | None] = field(default_factory=dict, compare=False,
                                                             repr=False)

    def read_ahead(self, task_id: str, data: Mapping[str, bytes]) -> None:
        """The bytes of a task's lock files (TASK_LOCK_FILES; a name not given does not
        exist), as the caller read them: the next lookup of each uses them once."""
        for name in TASK_LOCK_FILES:
            self._read_ahead[(task_id, name)] = data.get(name)

    def forget_read_ahead(self) -> None:
        self._read_ahead.clear()

    def _read(self, task_id: str, name: str) -> str | None:
        key = (task_id, name)
        if key in self._read_ahead:
            data = self._read_ahead.pop(key)
            return None if data is None else decode_text(data)
        try:
            return read_text(f"{self.root}/tasks/{task_id}/{name}")  # task_lock_dir's path
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _get(self, task_id: str, name: str, parse: Callable[[str, str], Any]) -> Any:
        text = self._read(task_id, name)
        if text is None:
            return None
        key = (name, text)
        got = self._parsed.get(key)
        if got is None:
            got = parse(text, f"lockfiles/tasks/{task_id}/{name}")
            if len(self._parsed) < 4096:
                self._parsed[key] = got
        return got

    def base(self, ref: str) -> tuple[BaseLock, str] | None:
        """The base lock of a declared base and its sha256 hex (None: not written yet)."""
        path = base_lock_path(self.root, ref)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        rel = f"lockfiles/bases/{path.name}"
        return parse_base_lock(decode_text(data), rel), hashlib.sha256(data).hexdigest()

    def python_target(self, task_id: str, base_ref: str, platform: str) -> tuple[str, str]:
        """The interpreter and manylinux tag a task's wheels are for (see python_target)."""
        key = ("base-packages", base_ref)
        base_pkgs = self._parsed.get(key)
        if base_pkgs is None:
            got = self.base(base_ref)
            base_pkgs = got[0].packages if got else ()
            self._parsed[key] = base_pkgs
        apt = self.apt(task_id)
        return python_target(platform, (*base_pkgs, *(apt.packages if apt else ())))

    def apt(self, task_id: str) -> AptLock | None:
        lock: AptLock | None = self._get(task_id, APT_LOCK, parse_apt_lock)
        return lock

    def python(self, task_id: str) -> PythonLock | None:
        lock: PythonLock | None = self._get(task_id, PYTHON_LOCK, parse_python_lock)
        return lock

    def source(self, task_id: str) -> SourceLock | None:
        lock: SourceLock | None = self._get(task_id, SOURCE_LOCK, parse_source_lock)
        return lock


def read_lockset(project: Path) -> LockSet:
    root = project / "lockfiles"
    images_file = root / "images.lock"
    try:
        images = parse_image_lock(images_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        images = ImageLock(())
    return LockSet(root=root, images=images)


# The interpreter wheels are resolved for when the image's own packages do not say (no python3
# or libc6 in its locks): Debian bookworm's python3 (3.11) on the platform.
PYTHON_TARGETS = {
    "linux/amd64": ("3.11", "x86_64-manylinux_2_36"),
    "linux/arm64": ("3.11", "aarch64-manylinux_2_36"),
}


_MACHINE = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


_VERSION_RE = re.compile(r"^(?:\d+:)?(\d+)\.(\d+)")


def python_target(platform: str, packages: Iterable[AptPackage]) -> tuple[str, str]:
    """(CPython X.Y, '<machine>-manylinux_2_<glibc minor>') of an image whose Debian packages
    are `packages` (its base lock's and its task's apt.lock): the interpreter is Debian's
    `python3` and the glibc its `libc6`. Falls back to PYTHON_TARGETS for what they lack."""
    default_version, default_plat = PYTHON_TARGETS.get(platform, ("3.11", platform))
    version, plat = default_version, default_plat
    for p in packages:
        m = _VERSION_RE.match(p.version)
        if m is None:
            continue
        if p.name == "python3":
            version = f"{m.group(1)}.{m.group(2)}"
        elif p.name == "libc6" and platform in _MACHINE and m.group(1) == "2":
            plat = f"{_MACHINE[platform]}-manylinux_2_{int(m.group(2))}"
    return version, plat


def apt_input(base_pinned: str, names: Iterable[str]) -> str:
    return input_digest([f"base {base_pinned}", *(f"apt {n}" for n in names)])


def python_input(requirements: Iterable[str], platform: str,
                 target: tuple[str, str] | None = None) -> str:
    version, plat = target or PYTHON_TARGETS.get(platform, ("3.11", platform))
    return input_digest([f"target {version} {plat}", *(f"req {r}" for r in requirements)])


def source_input(type_: str, location: str, base_commit: str) -> str:
    return input_digest([f"type {type_}", f"location {location}", f"commit {base_commit}"])
