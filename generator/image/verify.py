"""`gen verify-reproducible`: build every task twice from scratch, differently, and compare.

Build A and build B of a task share nothing (each has its own engine storage, build directory
and staged context) and differ in what should not matter:
- the order the context's files are written in (B writes them in reverse),
- the umask (A 022, B 077) of staging and of the engine,
- TZ and LANG/LC_ALL of the engine process,
- the build directory (two temp dirs) and the clock (B starts at least 2 s after A),
- optionally the engine (`--cross-engine`: B uses another engine).
Both results are normalized; their manifest digests must be equal. The report also says
whether the engines' raw outputs were already identical. On a mismatch, `generator.image.diff`
explains it: config fields, and per layer the files added, removed or changed (content, mode,
owner, mtime, link target, xattrs).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state as state_paths
from generator.core.cas import Store, default_store
from generator.core.errors import ToolError
from generator.core.fsutil import atomic_write
from generator.image.build import (
    Conditions,
    build_task_image,
    require_base,
    task_key,
    vendored_files,
)
from generator.image.diff import ImageDiff, compare_flattened, compare_images
from generator.image.engines.base import Engine
from generator.image.engines.select import get_engine
from generator.image.images import BuiltImage, load_images
from generator.image.oci import Layout
from generator.lock.fetch import artifact_names
from generator.lock.lockset import LockSet, read_lockset
from generator.spec.model import Project, Task
from generator.spec.project import load_project, select_tasks

__all__ = ["CONDITIONS_A", "CONDITIONS_B", "TaskVerdict", "VerifyResult", "other_engine",
           "verify_project"]

REPORT_FILE = state_paths.VERIFY_REPORT
TEMP_PREFIX = state_paths.VERIFY_TEMP_PREFIX
CONDITIONS_A = Conditions(reverse_order=False, umask=0o022,
                          env={"TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
                          isolated=True)
CONDITIONS_B = Conditions(reverse_order=True, umask=0o077,
                          env={"TZ": "Pacific/Kiritimati", "LANG": "de_DE.UTF-8",
                               "LC_ALL": "de_DE.UTF-8"}, isolated=True)
CLOCK_OFFSET_SEC = 2.0


@dataclass
class TaskVerdict:
    task: str
    identical: bool
    raw_identical: bool
    digest_a: str
    digest_b: str
    raw_a: str
    raw_b: str
    engine_a: str
    engine_b: str
    seconds: dict[str, float] = field(default_factory=dict)
    normalized_a: dict[str, Any] = field(default_factory=dict)
    normalized_b: dict[str, Any] = field(default_factory=dict)
    diff: ImageDiff | None = None
    same_filesystem_only: bool = False  # --cross-engine: same files + runtime config, not digest
    # the image .gen/build/images.json records for the task (what validate, release and export
    # use; built earlier or pulled from the registry cache): checked against these builds when
    # it was made from the same input key with the same engine
    recorded: dict[str, Any] | None = None

    @property
    def recorded_ok(self) -> bool:
        return self.recorded is None or self.recorded.get("matches") is not False

    @property
    def ok(self) -> bool:
        return self.identical and self.recorded_ok

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "ok": self.ok, "identical": self.identical,
                "raw_identical": self.raw_identical, "digest_a": self.digest_a,
                "digest_b": self.digest_b, "raw_digest_a": self.raw_a,
                "raw_digest_b": self.raw_b, "engine_a": self.engine_a,
                "engine_b": self.engine_b, "seconds": self.seconds,
                "normalized_a": self.normalized_a, "normalized_b": self.normalized_b,
                "same_filesystem_only": self.same_filesystem_only,
                "diff": self.diff.to_json() if self.diff else None,
                "recorded": self.recorded}


@dataclass
class VerifyResult:
    verdicts: list[TaskVerdict]
    conditions: dict[str, Any]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "conditions": self.conditions, "seconds": round(self.seconds, 3),
                "tasks": {v.task: v.to_json() for v in self.verdicts}}


def _check_recorded(image: BuiltImage | None, task: Task, project: Project, engine_id: str,
                    built: str, locks: LockSet, names: dict[str, str],
                    store: Store) -> dict[str, Any] | None:
    """Does the image images.json records for `task` match what was just built?

    Only comparable when it was built from the same input key (the same inputs) with the same
    engine: then a different digest means the image in use is not what these inputs build (a
    poisoned registry cache, a tampered layout or cache record) and the task fails. Otherwise
    the reason it was not compared is reported (stale: run `gen build`).
    """
    if image is None:
        return None
    out: dict[str, Any] = {"digest": image.digest, "key": image.key, "engine": image.engine,
                           "matches": None}
    if image.engine != engine_id:
        out["why"] = f"built with {image.engine}, verified with {engine_id}: not comparable"
        return out
    key = task_key(project, task, vendored_files(task, locks, names, store), engine_id)
    if key != image.key:
        out["why"] = "built from other inputs than the current ones (stale: run `gen build`)"
        return out
    out["matches"] = image.digest == built
    if not out["matches"]:
        out["why"] = (f"the recorded image {image.digest} is not what these inputs build "
                      f"({built}): it came from a registry cache or a build this one does not "
                      "reproduce (fix: gen build --rebuild, and check who pushes to the "
                      "registry)")
    return out


def other_engine(project_dir: Path, engine: Engine) -> Engine:
    """`--cross-engine`'s second engine: the first usable of docker, buildah, buildx that is
    not `engine`, its storage in the project's build state."""
    name = engine.name
    state = Path(project_dir).resolve() / state_paths.BUILD
    for cand in ("docker", "buildah", "buildx"):
        if cand == name:
            continue
        try:
            return get_engine(cand, state)
        except ToolError:
            continue
    raise ToolError(f"--cross-engine needs a second engine besides {name}",
                    hint="gen infra up (buildah and docker)")


def verify_project(project_dir: Path, *, engine: Engine, engine_b: Engine | None = None,
                   only: Sequence[str] | None = None,
                   store: Store | None = None, keep: Path | None = None,
                   progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Build each (or each named) task twice, A with `engine` and B with `engine_b` (given:
    `--cross-engine`, see `other_engine`) or else `engine` again, and compare the results.
    `build.project_engine` makes the engine the CLI uses."""
    cross_engine = engine_b is not None
    t_all = time.perf_counter()
    project = load_project(Path(project_dir))
    root = project.root
    tasks: list[Task] = select_tasks(project, only)
    store = store or default_store(root)
    locks = read_lockset(root)
    names = artifact_names(root)
    state = root / state_paths.VERIFY
    state.mkdir(parents=True, exist_ok=True)
    engine_a = engine
    engine_b = engine_b if engine_b is not None else engine_a
    id_a, id_b = engine_a.version(), engine_b.version()
    images = load_images(root)
    for task in tasks:  # every base there before the first build: one line when one is not
        require_base(project, task, locks)
    verdicts: list[TaskVerdict] = []
    for task in tasks:
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{task.id}-a-", dir=state) as ta, \
                tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{task.id}-b-", dir=state) as tb:
            wa, wb = Path(ta), Path(tb)
            t0 = time.perf_counter()
            times: dict[str, float] = {}

            def run(side: str, engine: Engine, work: Path, cond: Conditions,
                    task: Task = task, times: dict[str, float] = times) -> Any:
                if side == "b":
                    time.sleep(CLOCK_OFFSET_SEC)
                s0 = time.perf_counter()
                out = build_task_image(project, task, engine,
                                       out_layout=work / "normalized", work=work, store=store,
                                       names=names, locks=locks, conditions=cond)
                times[f"build_{side}"] = round(time.perf_counter() - s0, 3)
                return out

            with ThreadPoolExecutor(max_workers=2) as pool:
                fa = pool.submit(run, "a", engine_a, wa, CONDITIONS_A)
                fb = pool.submit(run, "b", engine_b, wb, CONDITIONS_B)
                da, sa = fa.result()
                db, sb = fb.result()
            times["normalize_a"] = round(sa.seconds, 3)
            times["normalize_b"] = round(sb.seconds, 3)
            la, lb = Layout(wa / "normalized"), Layout(wb / "normalized")
            diff = compare_images(la, da, lb, db)
            same_fs = None
            if cross_engine and not diff.identical:
                # different engines lay out layers differently: compare what ends up on disk
                flat = compare_flattened(la, da, lb, db)
                same_fs = flat.identical
                diff = flat
            times["compare"] = round(diff.seconds, 3)
            times["total"] = round(time.perf_counter() - t0, 3)
            verdict = TaskVerdict(task.id, da.digest == db.digest or bool(same_fs),
                                  sa.raw_digest == sb.raw_digest,
                                  da.digest, db.digest, sa.raw_digest, sb.raw_digest, id_a, id_b,
                                  times, sa.summary(), sb.summary(),
                                  None if diff.identical else diff,
                                  same_filesystem_only=bool(same_fs) and da.digest != db.digest)
            verdict.recorded = _check_recorded(images.get(task.id), task, project, id_a,
                                               da.digest, locks, names, store)
            verdicts.append(verdict)
            if keep is not None:
                for side, w in (("a", wa), ("b", wb)):
                    dest = keep / task.id / side
                    shutil.rmtree(dest, ignore_errors=True)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copytree(w / "normalized", dest)
        if progress:
            progress(1)
    conditions = {"a": {**CONDITIONS_A.describe(), "engine": id_a},
                  "b": {**CONDITIONS_B.describe(), "engine": id_b,
                        "started_after_a_sec": CLOCK_OFFSET_SEC}}
    result = VerifyResult(verdicts, conditions, time.perf_counter() - t_all)
    atomic_write(root / REPORT_FILE,
                 (json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n").encode())
    return result

