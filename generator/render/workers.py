"""The render worker pool: tasks are rendered in chunks, stage by stage, in forked workers that
each load, render and stage their tasks' files (written with O_EXCL under the caller's umask)
and return outcomes for the cache; the garbage collector is tuned while they run."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.core.errors import SpecError
from generator.core.fsutil import DIR_MODE, current_umask, make_dir, read_file, write_all
from generator.lock.lockset import read_lockset
from generator.render.cache import Sig, _read_locks, _sig, _Signed
from generator.render.context import RenderedFile
from generator.render.task import render_task
from generator.render.templates import TemplateSet
from generator.spec.config import load_dataset_config
from generator.spec.files import TaskFiles
from generator.spec.model import SPEC_FILE, Task
from generator.spec.project import load_task

__all__ = [
    "GC_THRESHOLDS",
]


@dataclass
class _TaskOutcome:
    """What rendering one task against the current output directory found."""

    task_id: str
    paths: Sequence[str]  # every output file of the task, relative to its directory
    new: bool  # the task directory did not exist; its files are staged
    changed: dict[str, RenderedFile]  # existing task: files whose bytes or mode differ
    unchanged: int
    signed: _Signed | None = None  # for the render cache


@dataclass(frozen=True)
class _Job:
    """What a worker needs to know (picklable; each worker loads the project once)."""

    project: str
    out_dir: str
    staging: str | None  # where brand-new task dirs are written (None: check/plan only)
    keep_files: bool  # plan mode: return every file's bytes, compare nothing
    sign: bool  # take render-cache signatures
    empty_out: bool = False  # out_dir does not exist yet: every task is new


class _Worker:
    """Loads config, locks and templates once per process, then renders task after task.

    Runs in worker processes for large datasets: each task's bytes are compared (and a new
    task's files written into the staging dir) where they were rendered, so only small
    results travel back. Nothing under out_dir except the staging dir is touched here.
    """

    def __init__(self, job: _Job) -> None:
        self.job = job
        project = Path(job.project)
        self.project = project
        self.config = load_dataset_config(project)
        self.locks = read_lockset(project)
        self.templates = TemplateSet(project / self.config.templates)
        self.umask = current_umask()
        self.lock_root = os.path.join(job.project, "lockfiles", "tasks")
        self.interned: dict[Any, Any] = {}  # equal tuples shared: pickled once per chunk
        self.dirs_of: dict[tuple[str, ...], list[str]] = {}

    def process(self, dirs: Sequence[Path]) -> list[_TaskOutcome]:
        """A chunk of tasks, stage by stage (list and load all, render all, then write): the
        code of each stage stays hot in the CPU's caches across the chunk."""
        # taken before any of these tasks is listed: a change made while rendering shows as
        # a new signature (or a racily clean one) next time
        signed_ns = time.time_ns()
        loaded = [self.load(d) for d in dirs]
        rendered = [render_task(task, self.config, self.locks, self.templates, listing)
                    for task, listing, _ in loaded]
        self.locks.forget_read_ahead()  # what a task's render did not need
        return [self.emit(signed_ns, task, listing, lock_sigs, files)
                for (task, listing, lock_sigs), files in zip(loaded, rendered, strict=True)]

    def load(self, d: Path) -> tuple[Task, TaskFiles, list[tuple[str, Sig]] | None]:
        """The task's spec, validated, and its directory listing (its input signatures)."""
        task_id = d.name
        listing = TaskFiles(os.fspath(d))
        if SPEC_FILE not in listing.stats:
            raise SpecError(f"task directory has no {SPEC_FILE}", file=f"tasks/{task_id}",
                            hint=f"add tasks/{task_id}/{SPEC_FILE} or remove the directory")
        lock_sigs, lock_data = _read_locks(f"{self.lock_root}/{task_id}")
        self.locks.read_ahead(task_id, lock_data)
        task = load_task(d, self.config.defaults, self.project, listing)
        return task, listing, lock_sigs if self.job.sign else None

    def emit(self, signed_ns: int, task: Task, listing: TaskFiles,
             lock_sigs: list[tuple[str, Sig]] | None, files: dict[str, RenderedFile]
             ) -> _TaskOutcome:
        """Write a new task's files into the staging dir, or compare an existing task's."""
        job = self.job
        key = tuple(sorted(files))
        paths: tuple[str, ...] = self.interned.setdefault(key, key)
        if job.keep_files:
            return _TaskOutcome(task.id, paths, False, files, 0)
        tdir = os.path.join(job.out_dir, task.id)
        out_sigs: list[tuple[str, Sig]] = []
        if job.empty_out or os.path.islink(tdir) or not os.path.isdir(tdir):
            if job.staging is not None:
                root = os.path.join(job.staging, task.id)
                dirs = self.dirs_of.get(paths)
                if dirs is None:
                    dirs = self.dirs_of[paths] = sorted(
                        {sub[:i] for sub in paths for i, c in enumerate(sub) if c == "/"})
                umask = self.umask
                make_dir(root, DIR_MODE, umask)
                for sub in dirs:  # parents sort before their children
                    make_dir(f"{root}/{sub}", DIR_MODE, umask)
                for sub in paths:
                    rf = files[sub]
                    out_sigs.append((sub, _write_staged(f"{root}/{sub}", rf.data, rf.mode,
                                                        umask)))
                # directories last: each file written changed its directory's mtime
                out_sigs.append(("", _sig(os.stat(root))))
                out_sigs.extend((sub, _sig(os.stat(f"{root}/{sub}"))) for sub in dirs)
                out_sigs.sort()
            outcome = _TaskOutcome(task.id, paths, True, {}, 0)
        else:
            changed: dict[str, RenderedFile] = {}
            unchanged = 0
            for sub in paths:
                rf = files[sub]
                target = f"{tdir}/{sub}"
                try:
                    st = os.stat(target)
                    same = (st.st_mode & 0o777) == rf.mode and st.st_size == len(rf.data)
                    if same:
                        same = read_file(target, st.st_size) == rf.data
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    same = False
                if same:
                    unchanged += 1
                else:
                    changed[sub] = rf
            outcome = _TaskOutcome(task.id, paths, False, changed, unchanged)
        if job.sign:
            outcome.signed = _Signed(signed_ns, listing.signatures(), lock_sigs,
                                     out_sigs if outcome.new else None)
            if outcome.new:
                outcome.signed.seal(self.interned)
        return outcome


_STAGED_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _write_staged(path: str, data: bytes, mode: int, umask: int) -> Sig:
    """Create a new file in the staging dir (O_EXCL: never an existing file); its signature.

    The hot loop of a large render: open, write, fstat, close (and fchmod only when the
    umask would change the mode).
    """
    fd = os.open(path, _STAGED_FLAGS, mode)
    try:
        written = os.write(fd, data)
        if written != len(data):
            write_all(fd, memoryview(data)[written:])
        if mode & umask:
            os.fchmod(fd, mode)
        st = os.fstat(fd)
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    finally:
        os.close(fd)


_WORKER: _Worker | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER
    _tune_gc()
    _WORKER = _Worker(job)


# Rendering allocates many small objects that live until the render ends (outcomes,
# signatures); with the default thresholds the cyclic GC rescans them over and over
# (about a third of a 10,000-task render). Objects that exist when a render starts are
# frozen out of the scans and the young generation is collected less often.
GC_THRESHOLDS = (50_000, 20, 100)


def _tune_gc() -> tuple[int, int, int]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return old


@contextlib.contextmanager
def _gc_tuned() -> Iterator[None]:
    old = _tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _work(dirs: list[Path]) -> list[_TaskOutcome]:
    assert _WORKER is not None
    return _WORKER.process(dirs)


def _run_tasks(job: _Job, dirs: list[Path], *, jobs: int | None,
               progress: Callable[[int], None] | None) -> list[_TaskOutcome]:
    if jobs is None:
        # one more worker than cores: creating files blocks on the file system now and then
        # (inode tables read from disk), and the spare worker keeps the cores busy meanwhile
        cores = os.cpu_count() or 1
        jobs = cores + 1 if cores > 1 else 1
    if not dirs:
        return []
    if len(dirs) < 400 or jobs <= 1:
        worker = _Worker(job)
        outcomes = []
        step = 100
        for i in range(0, len(dirs), step):
            outcomes.extend(worker.process(dirs[i:i + step]))
            if progress:
                progress(len(dirs[i:i + step]))
        return outcomes
    chunk = max(50, min(250, len(dirs) // (jobs * 8)))
    # the last tasks go out in small parts, so no worker idles while another ends a big one
    head = len(dirs) - min(len(dirs) // 4, jobs * chunk)
    parts = [dirs[i:min(i + chunk, head)] for i in range(0, head, chunk)] + \
        [dirs[i:i + 25] for i in range(head, len(dirs), 25)]
    outcomes = []
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(job,)) as pool:
        for part in pool.map(_work, parts):
            outcomes.extend(part)
            if progress:
                progress(len(part))
    return outcomes
