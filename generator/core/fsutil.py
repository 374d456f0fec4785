"""File-system helpers: atomic writes, deterministic walks. Nothing half-written, ever."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

__all__ = ["DIR_MODE", "LockMode", "ProjectBusy", "atomic_write", "current_umask",
           "decode_text", "link_or_copy", "make_dir", "make_dirs", "mount_points",
           "project_lock", "read_file", "read_file_stat", "read_text", "walk_files",
           "write_all", "write_new"]

BUSY_LOCK = os.path.join(".gen", "busy.lock")
DIR_MODE = 0o755  # the mode of every directory of gen's output (render, export)


class ProjectBusy(Exception):
    """The project's exclusive lock is taken: another gen command works on it."""


LockMode = Literal["shared", "exclusive", "snapshot"]


@contextlib.contextmanager
def project_lock(project: Path, mode: LockMode, *, create: bool = True) -> Iterator[None]:
    """Hold `<project>/.gen/busy.lock` (flock) while a command works on the project.

    - "shared": commands that read or write `.gen/` run side by side; they wait while a
      gc or a release holds the lock exclusively (saying so once);
    - "exclusive" (gen gc): never waits, ProjectBusy when any other command holds the lock,
      so it never deletes what a running command is using;
    - "snapshot" (gen release): exclusive, but waits for running commands to end, so what
      it checks is what it signs.

    With `create=False` (a `--check` or `--dry-run` run, which must write nothing) a project
    without `.gen/` is worked on without the lock: there is nothing in it for gc to delete.
    The kernel drops the lock when the process ends, however it ends. A project whose
    `.gen/` cannot be written (a read-only checkout) is worked on without a shared lock.
    """
    path = Path(project) / BUSY_LOCK
    try:
        if not create and not path.parent.is_dir():
            yield
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        if mode != "shared":
            raise
        yield
        return
    try:
        op = fcntl.LOCK_SH if mode == "shared" else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            if mode == "exclusive":
                raise ProjectBusy(str(path)) from None
            sys.stderr.write("gen: waiting for `gen gc` or `gen release` to finish on this "
                             "project\n" if mode == "shared" else "gen: waiting for the other "
                             "gen commands on this project to finish\n")
            fcntl.flock(fd, op)
        yield
    finally:
        os.close(fd)


def read_text(path: str, size: int | None = None) -> str:
    """`open(path, encoding="utf-8").read()` in fewer syscalls (universal newlines too)."""
    return decode_text(read_file(path, size))


def decode_text(data: bytes) -> str:
    """UTF-8 bytes as `open(..., encoding="utf-8").read()` gives them (universal newlines)."""
    text = data.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_file_stat(path: str) -> tuple[bytes, os.stat_result]:
    """A whole file's bytes and the fstat of the descriptor they were read from (so the
    stat describes the file that was read, not whatever the path names a moment later)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        return _read_fd(fd, st.st_size), st
    finally:
        os.close(fd)


def read_file(path: str, size: int | None = None) -> bytes:
    """A whole file's bytes: open, read, close.

    `size` is the size a stat taken earlier reported: when one read returns exactly that
    many bytes and no more, the file is read (a file that grew since then shows as changed
    in that stat's signature). Otherwise reads go on until end of file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_fd(fd, size)
    finally:
        os.close(fd)


def _read_fd(fd: int, size: int | None) -> bytes:
    """Everything left to read from `fd`; `size` as read_file's (one read when it is right)."""
    data = os.read(fd, (size if size is not None else 65535) + 1)
    if size is not None and len(data) == size:
        return data
    chunks = [data]
    while data:
        data = os.read(fd, 1 << 16)
        chunks.append(data)
    return b"".join(chunks)


def current_umask() -> int:
    """The process umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777  # unknown: assume the worst, so every file gets an explicit chmod


def make_dir(path: Path | str, mode: int = DIR_MODE, umask: int | None = None) -> None:
    """`os.mkdir` with the directory's mode exactly `mode`, whatever the umask.

    `umask` is the process umask when the caller has read it already (see current_umask):
    the chmod is then made only when the umask would have changed the mode. Without it the
    chmod is always made (one syscall, cheaper than reading the umask)."""
    os.mkdir(path, mode)
    if umask is None or mode & umask:
        os.chmod(path, mode)


def make_dirs(path: Path | str, mode: int = DIR_MODE, umask: int | None = None) -> None:
    """`mkdir -p`, where each directory it creates gets exactly `mode` (make_dir); the
    directories that exist already are left as they are."""
    missing: list[str] = []
    p = os.fspath(path)
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            make_dir(d, mode, umask)
        except FileExistsError:
            if not os.path.isdir(d):
                raise


def write_new(path: Path | str, data: bytes, mode: int = 0o644) -> None:
    """Write a file that nobody can see yet (inside a staging dir); mode set exactly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write(path: Path, data: bytes, mode: int = 0o644, *,
                 dir_mode: int | None = None) -> None:
    """Write `data` to `path` via a temp file in the same directory, then rename over it.

    Missing parent directories are created, as the umask has them, or with exactly
    `dir_mode` when it is given (output that promises its modes: make_dirs)."""
    if dir_mode is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        make_dirs(path.parent, dir_mode)
    tmp = path.parent / f".{path.name}.gen-tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def link_or_copy(src: Path, dst: Path) -> bool:
    """Make `dst` a hard link to `src`, or a copy where a link cannot be made (another file
    system, a link count at its limit); True when linked. For content-addressed files only
    (store and image-layout blobs): they are never changed in place, only replaced, so the
    names may share one inode. `dst` appears whole or not at all (temp name, then rename)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    # one name per call: threads of one process may put the same blob at once
    tmp = dst.parent / f".{dst.name[:32]}.gen-tmp-{uuid.uuid4().hex}"
    try:
        try:
            os.link(src, tmp)
            linked = True
        except OSError:
            shutil.copyfile(src, tmp)
            linked = False
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return linked


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file below `root`, sorted by relative POSIX path; symlinks refused."""
    stack = [root]
    found: list[Path] = []
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for entry in it:
                if entry.is_symlink():
                    raise OSError(f"{entry.path}: symlinks are not allowed in task inputs")
                if entry.is_dir():
                    stack.append(Path(entry.path))
                elif entry.is_file():
                    found.append(Path(entry.path))
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    yield from found


_OCTAL_RE = re.compile(r"\\([0-7]{3})")


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (/proc/self/mountinfo), as
    paths; empty when it cannot be read."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    points = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) > 4:  # field 5: the mount point, with \040-style octal escapes
            points.append(_OCTAL_RE.sub(lambda m: chr(int(m.group(1), 8)), parts[4]))
    return points
