"""What a task's templates see: task_context builds the context (image, apt and Python locks,
sources, the dataset and gen's version) from a task, the dataset config and the locks;
patch_files lists the paths a git diff touches."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import __version__
from generator.core.errors import LintError, LockError
from generator.lock.lockfiles import split_ref
from generator.lock.lockset import LockSet, apt_input, python_input, source_input
from generator.spec.model import DatasetConfig, SweTask, Task, TerminalTask
from generator.spec.yamlload import rel_path

__all__ = [
    "RenderedFile", "patch_files", "task_context",
]


@dataclass(frozen=True)
class RenderedFile:
    data: bytes
    mode: int


def _task_rel(task: Task, project: Path) -> str:
    return rel_path(task.spec_file, project)


def _image_context(task: Task, config: DatasetConfig, locks: LockSet) -> dict[str, str]:
    ref = task.environment.base_image
    _repo, tag, digest = split_ref(ref)
    if tag == "latest" or (tag is None and digest is None):
        raise LintError(f"base image '{ref}' uses the moving 'latest' tag",
                        file=_task_rel(task, config.path),
                        field="environment.base_image",
                        hint="name an explicit tag (e.g. :bookworm); gen lock pins its digest")
    platform = config.platforms[0]
    pin = locks.images.get(ref, platform)
    if pin is None:
        raise LockError(f"task '{task.id}': base image '{ref}' ({platform}) has no digest in the "
                        "lock", file="lockfiles/images.lock", field=ref,
                        hint="run `gen lock` to pin it")
    if digest is not None and digest not in (pin.index_digest, pin.manifest_digest):
        raise LockError(f"task '{task.id}': base image '{ref}' names a digest the lock does not "
                        "have", file="lockfiles/images.lock", field=ref,
                        hint="run `gen lock --update`")
    return {"ref": ref, "pinned": pin.pinned(), "platform": platform,
            "index_digest": pin.index_digest, "manifest_digest": pin.manifest_digest}


def _stale(task: Task, what: str, file: str) -> LockError:
    return LockError(f"task '{task.id}': the {what} lock is stale (the spec changed since it was "
                     "locked)", file=file, hint="run `gen lock` to update it")


def _apt_context(task: Task, image: dict[str, str], locks: LockSet) -> list[dict[str, Any]]:
    names = task.environment.apt
    lock_file = f"lockfiles/tasks/{task.id}/apt.lock"
    lock = locks.apt(task.id)
    if not names:
        return []
    if lock is None:
        raise LockError(f"task '{task.id}': Debian packages {', '.join(names)} are not locked",
                        file=lock_file, hint="run `gen lock`")
    key = (image["pinned"], names)
    want = _APT_INPUTS.get(key)
    if want is None:
        want = apt_input(image["pinned"], names)
        if len(_APT_INPUTS) < 4096:
            _APT_INPUTS[key] = want
    if lock.input != want:
        raise _stale(task, "Debian package", lock_file)
    memo = _APT_ROWS.get(id(lock))
    if memo is None or memo[0] is not lock:
        locked = {p.name for p in lock.packages}
        rows = tuple({"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256,
                      "filename": p.filename, "size": p.size}
                     for p in sorted(lock.packages, key=lambda p: p.filename))
        memo = (lock, locked, rows)
        if len(_APT_ROWS) < 4096:
            _APT_ROWS[id(lock)] = memo  # holds the lock, so its id is not reused meanwhile
    _, locked, rows = memo
    missing = [n for n in names if n.split(":")[0] not in locked]
    if missing:
        raise LockError(f"task '{task.id}': package '{missing[0]}' has no exact version in the "
                        "lock", file=lock_file, field=missing[0], hint="run `gen lock --update`")
    return [dict(r) for r in rows]  # fresh dicts: a template cannot reach another task's


# Per process: tasks with the same packages share one parsed lock (LockSet), so the input
# digest and the template rows are computed once per distinct lock.
_APT_INPUTS: dict[tuple[str, tuple[str, ...]], str] = {}


_APT_ROWS: dict[int, tuple[Any, set[str], tuple[dict[str, Any], ...]]] = {}


def _python_context(task: Task, config: DatasetConfig, locks: LockSet,
                    apt: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    reqs = task.environment.python
    lock_file = f"lockfiles/tasks/{task.id}/requirements.txt"
    if not reqs:
        return [], ""
    lock = locks.python(task.id)
    if lock is None:
        raise LockError(f"task '{task.id}': Python requirements are not locked with hashes",
                        file=lock_file, hint="run `gen lock`")
    target = locks.python_target(task.id, task.environment.base_image, config.platforms[0])
    if lock.input != python_input(reqs, config.platforms[0], target):
        raise _stale(task, "Python", lock_file)
    if not any(p["name"] == "python3-pip" for p in apt):
        raise LintError(f"task '{task.id}' installs Python requirements but not pip",
                        file=_task_rel(task, config.path), field="environment.apt",
                        hint="add python3-pip to environment.apt")
    pins = [{"name": p.name, "version": p.version, "hashes": list(p.hashes)} for p in lock.pins]
    return pins, lock.text


def _source_context(task: SweTask, locks: LockSet) -> dict[str, str]:
    lock_file = f"lockfiles/tasks/{task.id}/source.lock"
    lock = locks.source(task.id)
    if lock is None:
        raise LockError(f"task '{task.id}': source '{task.source.location}' has no commit/sha256 "
                        "in the lock", file=lock_file, hint="run `gen lock`")
    if lock.input != source_input(task.source.type, task.source.location, task.base_commit):
        raise _stale(task, "source", lock_file)
    return {"type": lock.type, "location": lock.location, "sha256": lock.sha256,
            "commit": lock.commit, "filename": lock.filename}


_DIFF_FILE_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def patch_files(patch: str) -> list[str]:
    """Paths a git diff touches (both sides), sorted and unique."""
    out: set[str] = set()
    for a, b in _DIFF_FILE_RE.findall(patch):
        out.update((a, b))
    return sorted(out)


# a terminal task's test command when its spec gives none
DEFAULT_TERMINAL_TEST = 'python3 -m pytest -rA -p no:cacheprovider "$TEST_DIR"'


def _pytest_command(task: Task, command: str, project: Path) -> str:
    if "pytest" in command and "-rA" not in command:
        raise LintError(f"task '{task.id}': the pytest command lacks -rA, so the harness cannot "
                        "parse per-test results", file=_task_rel(task, project),
                        field="test_command",
                        hint="add -rA to the pytest command")
    return command


def task_context(task: Task, config: DatasetConfig, locks: LockSet) -> dict[str, Any]:
    image = _image_context(task, config, locks)
    apt = _apt_context(task, image, locks)
    python, python_text = _python_context(task, config, locks, apt)
    ctx: dict[str, Any] = {
        "gen": {"version": __version__},
        "dataset": {"name": config.name, "version": config.version,
                    "source_date_epoch": config.source_date_epoch},
        "task": task,
        "image": image,
        "apt": apt,
        "python": python,
        "python_lock": python_text,
        "env": list(task.environment.env),
        "workdir": task.environment.workdir,
    }
    if isinstance(task, TerminalTask):
        if "tmux" not in {p["name"] for p in apt}:
            raise LintError(f"task '{task.id}': Terminal-Bench drives the agent through tmux, "
                            "which the image would not have", file=_task_rel(task, config.path),
                            field="environment.apt",
                            hint="add tmux to environment.apt (or defaults.apt in gen.yaml)")
        if task.record_asciinema and "asciinema" not in {p["name"] for p in apt}:
            raise LintError(f"task '{task.id}': record_asciinema needs asciinema in the image",
                            file=_task_rel(task, config.path), field="environment.apt",
                            hint="add asciinema to apt")
        command = task.test_command or DEFAULT_TERMINAL_TEST
        ctx["test_command"] = _pytest_command(task, command, config.path)
        ctx["files"] = task.files
        ctx["solution_text"] = task.solution_text
    else:
        assert isinstance(task, SweTask)
        ctx["source"] = _source_context(task, locks)
        test_files = patch_files(task.test_patch)
        gold_files = patch_files(task.patch)
        overlap = sorted(set(test_files) & set(gold_files))
        if overlap:
            raise LintError(f"task '{task.id}': the gold patch and the test patch both edit "
                            f"'{overlap[0]}'", file=_task_rel(task, config.path), field="patch",
                            hint="move test changes to test_patch and code changes to patch")
        ctx["test_files"] = test_files
        # The test files, as SWE-bench's eval script runs them: FAIL_TO_PASS / PASS_TO_PASS ids
        # are names in the log (SWE-bench's parser cuts them at the first space), not
        # command-line selectors (an id with a space or an escaped character selects nothing).
        ctx["test_command"] = _pytest_command(task, task.test_command, config.path)
    return ctx
