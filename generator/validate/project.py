"""`gen validate`: prove every task's test set is sound, the same every run.

For each task, in containers of its built image (`images.json`, by digest) with the network
off, a memory limit, the task's test timeout and fixed randomness:

- terminal tasks: state `unsolved` (the agent image as built) must NOT be resolved (some test
  fails), state `solved` (after `solution.sh`) must be resolved (every test passes);
- swe tasks: state `test_patch` (SWE-bench's eval script on the base commit) must have every
  FAIL_TO_PASS test failing and every PASS_TO_PASS test passing; state `gold` (gold patch, then
  the eval script) must have all of them passing. `derive=True` writes FAIL_TO_PASS /
  PASS_TO_PASS into the spec from what was observed (SWE-bench's rule), refusing an empty
  FAIL_TO_PASS.

Each state runs `runs` times in fresh containers; a test whose status differs between runs is a
flake and fails the task. Static anti-cheat checks run first: the agent image holds no file of
tests/ or of the solution (paths and content hashes, every layer), the instruction does not
contain the solution, the gold patch touches no test file, and the test patch only test files.
Tests and the solution enter a container only at test time (`cp`), as Terminal-Bench does.
"""

from __future__ import annotations

import json
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.cas import Store, default_store
from generator.core.errors import InputError, ToolError
from generator.core.fsutil import atomic_write
from generator.image.images import BuiltImage, load_images
from generator.image.toolchain import is_sealed, toolchain_for
from generator.lock.fetch import artifact_names
from generator.lock.lockset import LockSet, read_lockset
from generator.lock.tools import coverage_wheel
from generator.spec.model import Project, SweTask, Task, TerminalTask, mutant_budget
from generator.spec.project import load_project
from generator.validate.attacks import preload_library, select
from generator.validate.checks import (
    TEST_DIR,
    check_image_contents,
    instruction_leak,
    layout_ref,
    patch_checks,
    secret_files,
    solution_lines,
)
from generator.validate.grading import (
    TaskVerdict,
    derive_lists,
    find_flakes,
    grade_swe,
    grade_terminal,
)
from generator.validate.runner import Runner, get_runner, remove_all
from generator.validate.runs import (
    SWE_STATES,
    TERMINAL_STATES,
    RunResult,
    _TaskRunner,
)
from generator.validate.spec_edit import write_derived
from generator.validate.strength import measure_task
from generator.validate.strength_report import gate, report_json, text_lines
from generator.validate.tamper import run_battery

__all__ = [
    "REPORT_FILE",
    "Options",
    "ValidateResult",
    "validate_project",
]

REPORT_FILE = state.VALIDATE_REPORT
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Options:
    runs: int = 3
    jobs: int = 1
    seed: int = DEFAULT_SEED
    derive: bool = False
    engine: str = "auto"
    only: Sequence[str] | None = None
    tamper: bool = False  # run the tampering battery (tamper.py) after the states
    attacks: Sequence[str] | None = None  # a selection of the battery (default: all)
    strength: bool = False  # measure the tests' strength (strength.py) of each sound task
    max_mutants: int | None = None  # per task (default: gen.yaml strength.max_mutants, or 30)


# --------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Running states
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Writing derived lists into the spec
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# The whole project
# --------------------------------------------------------------------------------------


@dataclass
class ValidateResult:
    engine: str
    runs: int
    seed: int
    session: str
    env: dict[str, str]
    verdicts: list[TaskVerdict]
    seconds: float
    derive: bool
    leftovers: list[str] = field(default_factory=list)
    strength: dict[str, Any] | None = None  # the strength report (--strength)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.leftovers

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "engine": self.engine, "runs": self.runs, "seed": self.seed,
            "env": dict(sorted(self.env.items())), "network": "none", "session": self.session,
            "derive": self.derive, "seconds": round(self.seconds, 3),
            "leftover_containers": list(self.leftovers),
            "tasks": {v.task: v.to_json() for v in self.verdicts},
            "summary": {"tasks": len(self.verdicts),
                        "valid": sum(1 for v in self.verdicts if v.ok),
                        "failed": sum(1 for v in self.verdicts if not v.ok),
                        "flaky": sorted(v.task for v in self.verdicts if v.flaky)},
            **({} if self.strength is None else {"strength": self.strength}),
        }


def test_env(seed: int, epoch: int) -> dict[str, str]:
    """The environment every test step sees: fixed randomness, clock zone and locale."""
    return {"PYTHONHASHSEED": "0", "GEN_SEED": str(seed), "TEST_SEED": str(seed),
            "TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TEST_DIR": TEST_DIR,
            "SOURCE_DATE_EPOCH": str(epoch), "PYTHONDONTWRITEBYTECODE": "1"}


def _check_rendered(task: Task, task_dir: Path) -> None:
    need = ["run-tests.sh", "solution.sh"] + (["eval.sh"] if isinstance(task, SweTask) else [])
    for name in need:
        if not (task_dir / name).is_file():
            raise InputError(f"task '{task.id}' is not rendered: dataset/{task.id}/{name} is "
                             "missing", file=f"dataset/{task.id}/{name}", hint="run `gen render`")


def _validate_task(project: Path, task: Task, image: BuiltImage, runner: Runner, opts: Options,
                   env: Mapping[str, str], labels: Mapping[str, str],
                   advance: Callable[[int], None], stop: threading.Event,
                   library: bytes | None = None,
                   strength: Callable[[_TaskRunner, TaskVerdict], None] | None = None
                   ) -> TaskVerdict:
    t0 = time.monotonic()
    task_dir = project / "dataset" / task.id
    v = TaskVerdict(task.id, task.kind, image.ref)
    # static anti-cheat checks
    layout_dir: Path | None = project / image.layout if image.layout else None
    ref_name = ""
    if layout_dir is not None and layout_dir.is_dir():
        try:
            ref_name = layout_ref(layout_dir, image.digest)
            found = check_image_contents(layout_dir, ref_name, secret_files(task, task_dir))
        except (OSError, KeyError, ValueError, tarfile.TarError, InputError) as exc:
            msg = exc.one_line() if isinstance(exc, InputError) else str(exc)
            found = [f"anti-cheat: cannot read the image layout {image.layout}: {msg}"]
            layout_dir = None
    else:
        layout_dir = None
        found = [f"anti-cheat: cannot check the image's contents: its OCI layout "
                 f"{image.layout} is missing (fix: run `gen build`)"]
    v.checks["image_has_no_tests_or_solution"] = found
    leak = instruction_leak(task.instruction, solution_lines(task))
    what = "instruction" if isinstance(task, TerminalTask) else "problem statement"
    v.checks["instruction_has_no_solution"] = [
        f"anti-cheat: the {what} contains the solution ({len(leak)} of its lines, e.g. "
        f"'{leak[0][:80]}')"] if leak else []
    if isinstance(task, SweTask):
        v.checks["patches_split_tests_from_fix"] = patch_checks(task)
    for found_problems in v.checks.values():
        v.problems += found_problems
    # dynamic: every state, `runs` times
    states = TERMINAL_STATES if isinstance(task, TerminalTask) else SWE_STATES
    done = 0
    try:
        local = runner.ensure_image(image.ref, layout_dir, ref_name)
        record = None  # only a sealed script needs the image's toolchain record
        if layout_dir is not None and is_sealed((task_dir / "run-tests.sh").read_bytes()):
            try:
                record = toolchain_for(project, image.layout, image.digest)
            except InputError as exc:
                v.problems.append(f"sealed grading: {exc.one_line()}")
        tr = _TaskRunner(task, task_dir, local, runner, env=env,
                         labels={**labels, "gen.validate.task": task.id}, record=record)
        tr.swe_run_tests = not opts.derive
        for st in states:
            v.runs[st.name] = []
            for i in range(1, opts.runs + 1):
                if stop.is_set():
                    raise ToolError("interrupted")
                v.runs[st.name].append(tr.run(st, i))
                done += 1
                advance(1)
        if opts.tamper:
            unsolved = next((r.statuses for r in v.runs[states[0].name] if r.statuses), None)
            v.tamper = run_battery(tr, select(opts.attacks), library, unsolved, advance)
            for a in v.tamper:
                if a.through:
                    v.problems.append(f"tamper: attack {a.attack} got through "
                                      f"({', '.join(a.through)}): {a.what}")
    except ToolError as exc:
        advance(len(states) * opts.runs - done)
        v.problems.append(f"engine: {exc.one_line()}")
        v.seconds = time.monotonic() - t0
        return v
    if isinstance(task, TerminalTask):
        grade_terminal(v, v.runs)
    else:
        f2p, p2p = list(task.fail_to_pass), list(task.pass_to_pass)
        if opts.derive:
            f2p, p2p = _derive(v, task, v.runs) or (f2p, p2p)
        grade_swe(v, v.runs, f2p=f2p, p2p=p2p)
    if strength is not None:
        if v.ok:
            strength(tr, v)
        else:
            v.strength_skipped = "the task's tests are not sound (see its problems)"
    v.seconds = time.monotonic() - t0
    return v


def _derive(v: TaskVerdict, task: SweTask, runs: Mapping[str, list[RunResult]]
            ) -> tuple[list[str], list[str]] | None:
    before_state, gold_state = SWE_STATES
    reasons: list[str] = []
    flakes = {**find_flakes(before_state.name, runs[before_state.name]),
              **find_flakes(gold_state.name, runs[gold_state.name])}
    if flakes:
        reasons.append(f"{len(flakes)} flaky test(s) (first: {sorted(flakes)[0]})")
    usable = {s.name: [r for r in runs[s.name] if r.statuses and not r.timed_out and not r.errors]
              for s in SWE_STATES}
    if not usable[before_state.name] or not usable[gold_state.name]:
        reasons.append("a state produced no test results")
    if reasons:
        v.problems.append("derive refused: " + "; ".join(reasons))
        return None
    before = usable[before_state.name][0].statuses or {}
    after = usable[gold_state.name][0].statuses or {}
    f2p, p2p = derive_lists(before, after)
    v.derived = {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p}
    if not f2p:
        v.problems.append("derive refused: no test fails with only the test patch and passes "
                          "with the gold patch (derived FAIL_TO_PASS is empty)")
        return None
    v.spec_written = write_derived(task, f2p, p2p)
    return f2p, p2p


def validate_project(project: Path, opts: Options = Options(), *,
                     runner: Runner | None = None,
                     progress: Callable[[int], None] | None = None) -> ValidateResult:
    """Validate every task (or `opts.only`); writes `.gen/validate/report.json`."""
    if opts.runs < 1:
        raise InputError("--runs must be at least 1", field="--runs", hint="use --runs 3")
    project = project.resolve()
    loaded = load_project(project, only=opts.only)
    images = load_images(project)
    missing = [t.id for t in loaded.tasks if t.id not in images]
    if missing:
        raise InputError(f"no built image for task(s) {', '.join(missing)} in "
                         ".gen/build/images.json", file=".gen/build/images.json",
                         hint="run `gen build` first")
    for t in loaded.tasks:
        _check_rendered(t, project / "dataset" / t.id)
    runner = runner or get_runner(opts.engine)
    problem = runner.available()
    if problem is not None:
        raise ToolError(f"engine {runner.name} is not usable: {problem}")
    engine = runner.version()
    env = test_env(opts.seed, loaded.config.source_date_epoch)
    session = uuid.uuid4().hex[:16]
    labels = {"gen.validate": "1", "gen.validate.session": session}
    lock = threading.Lock()

    def advance(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    t0 = time.monotonic()
    verdicts: list[TaskVerdict] = []
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, opts.jobs))
    try:
        library = None
        if opts.tamper and any(a.needs_cc for a in select(opts.attacks)):
            library = preload_library()
        measure = _strength_hook(project, loaded, opts, advance, stop) if opts.strength \
            else None
        futures = [pool.submit(_validate_task, project, t, images[t.id], runner, opts, env,
                               labels, advance, stop, library, measure) for t in loaded.tasks]
        verdicts = [f.result() for f in futures]
    except BaseException:
        # interrupted (or a bug): start nothing new, and kill what runs so the workers return
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        remove_all()
        raise
    finally:
        pool.shutdown(wait=True)
        remove_all()
    leftovers = runner.containers(f"gen.validate.session={session}")
    result = ValidateResult(engine=engine, runs=opts.runs, seed=opts.seed, session=session,
                            env=env, verdicts=verdicts, seconds=time.monotonic() - t0,
                            derive=opts.derive, leftovers=leftovers)
    if opts.strength:
        result.strength = write_strength_report(project, loaded, verdicts, opts,
                                                time.monotonic() - t0)
    atomic_write(project / REPORT_FILE,
                 (json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n").encode())
    return result


def _strength_hook(project: Path, loaded: Project, opts: Options,
                   advance: Callable[[int], None], stop: threading.Event
                   ) -> Callable[[_TaskRunner, TaskVerdict], None]:
    """What `_validate_task` calls on a sound task with --strength: coverage.py from the
    store (the locked wheel for the task's interpreter), then strength.measure_task; the gate's
    problems become the task's."""
    locks, names, store = read_lockset(project), artifact_names(project), default_store(project)
    cfg = loaded.config.strength
    max_mutants = mutant_budget(opts.max_mutants, cfg)

    def run(tr: _TaskRunner, v: TaskVerdict) -> None:
        wheel, problem = _wheel(loaded, tr.task, locks, names, store)
        res = measure_task(tr, wheel=wheel, coverage_problem=problem, seed=opts.seed,
                           max_mutants=max_mutants, jobs=opts.jobs, advance=advance, stop=stop)
        v.strength = res
        v.problems += gate(res, cfg)

    return run


def _wheel(loaded: Project, task: Task, locks: LockSet, names: dict[str, str],
           store: Store) -> tuple[bytes | None, str | None]:
    """The locked coverage.py wheel for the task's interpreter, from the store; or why not."""
    try:
        _, sha, _ = coverage_wheel(loaded, task, locks, names)
        if not store.has(sha):
            raise InputError(f"the coverage.py wheel {sha[:12]} is not in the store",
                             hint="run `gen fetch`")
        return store.path(sha).read_bytes(), None
    except InputError as exc:
        return None, f"coverage.py is not available: {exc.one_line()}"


def open_task(project: Path, task_id: str, *, engine: str = "auto", seed: int = DEFAULT_SEED
              ) -> tuple[_TaskRunner, bytes | None, str | None]:
    """One task's runner as validate makes it (its image present in the engine, its sealed
    scripts filled in, validate's test environment and labels), with its coverage.py wheel or
    why there is none: for bench/strength_bench.py. Remove what it starts with remove_all()."""
    project = project.resolve()
    loaded = load_project(project, only=[task_id])
    task = loaded.tasks[0]
    image = load_images(project)[task_id]
    runner = get_runner(engine)
    layout = project / image.layout if image.layout else None
    name = layout_ref(layout, image.digest) if layout is not None and layout.is_dir() else ""
    local = runner.ensure_image(image.ref, layout if name else None, name)
    task_dir = project / "dataset" / task.id
    record = toolchain_for(project, image.layout, image.digest) \
        if layout is not None and is_sealed((task_dir / "run-tests.sh").read_bytes()) else None
    labels = {"gen.validate": "1", "gen.validate.session": uuid.uuid4().hex[:16],
              "gen.validate.task": task.id}
    tr = _TaskRunner(task, task_dir, local, runner, labels=labels, record=record,
                     env=test_env(seed, loaded.config.source_date_epoch))
    wheel, problem = _wheel(loaded, task, read_lockset(project), artifact_names(project),
                            default_store(project))
    return tr, wheel, problem


def write_strength_report(project: Path, loaded: Project, verdicts: Sequence[TaskVerdict],
                          opts: Options, seconds: float) -> dict[str, Any]:
    """`.gen/validate/strength.json` and `strength.txt`, for every task that was measured."""
    cfg = loaded.config.strength
    results = [(v.strength, v.image) for v in verdicts if v.strength is not None]
    report = report_json(results, cfg, seed=opts.seed, max_mutants=opts.max_mutants,
                         jobs=opts.jobs, seconds=seconds)
    report["skipped"] = {v.task: v.strength_skipped for v in verdicts if v.strength_skipped}
    if report["skipped"]:
        report["ok"] = False
    atomic_write(project / state.VALIDATE_STRENGTH,
                 (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    atomic_write(project / state.VALIDATE_STRENGTH_TEXT,
                 ("\n".join(text_lines(report, verbose=True)) + "\n").encode())
    return report
