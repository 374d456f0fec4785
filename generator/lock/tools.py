"""The tools gen itself runs inside task containers, locked like a task's own requirements.

Today that is coverage.py, for `gen validate --strength`: with gen.yaml's `strength:` section
present, `gen lock` pins it by hash once per interpreter the tasks' images have (their Debian
`python3` and `libc6`, from the base and apt locks), in `lockfiles/tools/coverage-<X.Y>-<plat>.txt`.
`gen fetch` stores the wheel; validate copies it in at test time, as it copies the tests in:
the image is never changed. A task whose image has no python3 gets no coverage lock (its
strength report says coverage cannot be measured there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from generator.core.errors import InputError
from generator.core.fsutil import decode_text
from generator.lock.lockfiles import AptLock, PythonLock, parse_python_lock
from generator.lock.lockset import LockSet, python_input, python_target
from generator.spec.model import Project, Task

__all__ = ["TOOLS_DIR", "ToolLock", "coverage_lock_rel", "coverage_locks", "coverage_target",
           "coverage_wheel", "left_over_tool_locks", "read_coverage_lock"]

TOOLS_DIR = "lockfiles/tools"


@dataclass(frozen=True)
class ToolLock:
    rel: str  # lockfiles/tools/coverage-<X.Y>-<plat>.txt
    target: tuple[str, str]  # (CPython X.Y, <machine>-manylinux_2_N)
    requirement: str
    input: str  # what the lock was resolved from (python_input of requirement and target)
    tasks: tuple[str, ...]


def coverage_lock_rel(target: tuple[str, str]) -> str:
    return f"{TOOLS_DIR}/coverage-{target[0]}-{target[1]}.txt"


def coverage_target(task: Task, locks: LockSet, platform: str,
                    fresh: Mapping[str, AptLock | None] | None = None) -> tuple[str, str] | None:
    """The interpreter coverage.py is locked for in this task's image; None: no python3.
    `fresh`: task id -> the apt lock a running `gen lock` resolved (not yet written)."""
    got = locks.base(task.environment.base_image)
    if fresh is not None and task.id in fresh:
        apt = fresh[task.id]
    else:
        apt = locks.apt(task.id) if task.environment.apt else None
    pkgs = (*(got[0].packages if got else ()), *(apt.packages if apt else ()))
    if not any(p.name == "python3" for p in pkgs):
        return None
    return python_target(platform, pkgs)


def coverage_locks(project: Project, locks: LockSet,
                   fresh: Mapping[str, AptLock | None] | None = None) -> list[ToolLock]:
    """The coverage locks the project needs (none without gen.yaml `strength:`)."""
    cfg = project.config.strength
    if cfg is None:
        return []
    platform = project.config.platforms[0]
    by_target: dict[tuple[str, str], list[str]] = {}
    for task in project.tasks:
        target = coverage_target(task, locks, platform, fresh)
        if target is not None:
            by_target.setdefault(target, []).append(task.id)
    return [ToolLock(coverage_lock_rel(t), t, cfg.coverage,
                     python_input([cfg.coverage], platform, t), tuple(sorted(ids)))
            for t, ids in sorted(by_target.items())]


def read_coverage_lock(root: Path, rel: str) -> PythonLock | None:
    try:
        data = (root / rel).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return parse_python_lock(decode_text(data), rel)


def left_over_tool_locks(root: Path, wanted: list[ToolLock]) -> list[str]:
    keep = {w.rel for w in wanted}
    d = root / TOOLS_DIR
    if not d.is_dir():
        return []
    return sorted(f"{TOOLS_DIR}/{p.name}" for p in d.iterdir()
                  if f"{TOOLS_DIR}/{p.name}" not in keep)


def coverage_wheel(project: Project, task: Task, locks: LockSet,
                   names: dict[str, str]) -> tuple[str, str, str]:
    """(wheel file name, sha256 hex, coverage version) of the fetched coverage.py wheel for
    this task's interpreter, offline (`gen fetch` recorded the names). InputError naming the
    lock and the fix when the project has no strength section, no lock or no fetched wheel."""
    if project.config.strength is None:
        raise InputError("gen.yaml has no 'strength:' section, so coverage.py is not locked",
                         file="gen.yaml", field="strength",
                         hint="add 'strength: {}' (or thresholds), then `gen lock` and "
                         "`gen fetch`")
    target = coverage_target(task, locks, project.config.platforms[0])
    if target is None:
        raise InputError(f"task '{task.id}': its image has no python3, so coverage.py cannot "
                         "run in it", file=f"tasks/{task.id}/task.spec.yaml",
                         field="environment.apt", hint="add python3 to environment.apt")
    rel = coverage_lock_rel(target)
    lock = read_coverage_lock(project.root, rel)
    want = python_input([project.config.strength.coverage], project.config.platforms[0], target)
    if lock is None or lock.input != want:
        raise InputError(f"{rel} is {'missing' if lock is None else 'stale'}", file=rel,
                         hint="run `gen lock`, then `gen fetch`")
    pin = next((p for p in lock.pins if p.name.lower() == "coverage"), None)
    if pin is None:
        raise InputError(f"{rel} pins no coverage", file=rel, hint="run `gen lock --update`")
    for h in pin.hashes:
        hexd = h.split(":", 1)[1]
        if names.get(hexd, "").endswith(".whl"):
            return names[hexd], hexd, pin.version
    raise InputError(f"no fetched wheel for coverage=={pin.version} ({rel})", file=rel,
                     hint="run `gen fetch`")
