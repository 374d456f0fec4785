"""`gen validate`: run every task's tests in its image and prove the test set is sound."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from generator.commands import add_shard, selected
from generator.core.errors import EXIT_CHECK_FAILED, InputError
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.core.state import VALIDATE_STRENGTH_TEXT as STRENGTH_TEXT
from generator.spec.model import DEFAULT_MAX_MUTANTS, mutant_budget
from generator.spec.project import load_project
from generator.validate.attacks import ATTACKS
from generator.validate.grading import TaskVerdict
from generator.validate.project import (
    DEFAULT_SEED,
    REPORT_FILE,
    Options,
    validate_project,
)
from generator.validate.runner import RUNNERS
from generator.validate.strength_report import text_lines
from generator.validate.tamper import HARNESSES


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "validate", help="run each task's tests in its image: fail before the fix, pass after",
        description="Run every task's tests in containers of its built image (network off, "
        "memory and time limits, fixed seeds): terminal tasks must fail unsolved and pass after "
        "solution.sh; swe tasks must fail FAIL_TO_PASS and pass PASS_TO_PASS with the test "
        "patch, and pass all with the gold patch. Each state runs --runs times; a test whose "
        "status changes is a flake. Anti-cheat checks look for tests or the solution in the "
        "image, the solution in the instruction and test files in the gold patch. Writes "
        f"{REPORT_FILE.as_posix()}; exits 1 when a task fails validation.")
    add_common(p)
    p.add_argument("--engine", default="auto", choices=("auto", *RUNNERS),
                   help="container engine (default: auto = docker, then podman)")
    p.add_argument("--runs", type=int, default=3, metavar="N",
                   help="runs of each state; a status change between runs is a flake "
                   "(default: 3)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="tasks validated in parallel (default: 1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                   help=f"the seed exported to the tests as GEN_SEED (default: {DEFAULT_SEED})")
    p.add_argument("--derive", action="store_true",
                   help="swe tasks: write FAIL_TO_PASS / PASS_TO_PASS into the spec from the "
                   "observed runs (refuses an empty FAIL_TO_PASS)")
    p.add_argument("--tamper", action="store_true",
                   help="also run the tampering battery: each attack in a fresh container of "
                   "the unsolved task, then the tests as tb, Harbor and swebench run them; a "
                   "task whose grading an attack fools fails (docs/grading.md)")
    p.add_argument("--attack", action="append", metavar="NAME", choices=[a.name for a in ATTACKS],
                   help="with --tamper: run only this attack (repeatable; default: all)")
    p.add_argument("--strength", action="store_true",
                   help="also measure how strong each sound task's tests are: the fix's lines "
                   "run by its tests (coverage.py, per test) and the fix's mutants they fail to "
                   "kill (each in a fresh container, -j at a time); gated by gen.yaml "
                   f"strength:, reported in {STRENGTH_TEXT.as_posix()}")
    p.add_argument("--max-mutants", type=int, default=None, metavar="N",
                   help="with --strength: at most N mutants per task, a --seed'ed sample "
                   f"(default: gen.yaml strength.max_mutants, or {DEFAULT_MAX_MUTANTS})")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="validate only these task ids")
    add_shard(p)
    p.set_defaults(handler=run, busy="shared")


def _task_lines(v: TaskVerdict, verbose: bool) -> list[str]:
    states = "; ".join(f"{s}: {line}" for s, line in v.summary.items())
    head = f"{'ok    ' if v.ok else 'FAILED'}  {v.task} [{v.kind}] {states} ({v.seconds:.1f}s)"
    lines = [head]
    for p in v.problems:
        lines.append(f"    - {p}")
    for a in v.tamper or []:
        if verbose or a.through or a.not_run:
            lines.append(f"    tamper {a.line()}")
    if v.tamper is not None:
        n_through = sum(1 for a in v.tamper if a.through)
        lines.append(f"    tamper: {len(v.tamper) - n_through} of {len(v.tamper)} attacks "
                     f"blocked" + (f", {n_through} got through" if n_through else ""))
    if v.strength_skipped:
        lines.append(f"    strength: not measured: {v.strength_skipped}")
    if v.derived is not None:
        f2p, p2p = v.derived["FAIL_TO_PASS"], v.derived["PASS_TO_PASS"]
        where = f"tasks/{v.task}/task.spec.yaml"
        did = f"wrote {where}" if v.spec_written else f"{where} already says so"
        lines.append(f"    derived FAIL_TO_PASS ({len(f2p)}) and PASS_TO_PASS ({len(p2p)}): "
                     f"{did}")
    if verbose or not v.ok:
        for name, t in v.tests.items():
            if not verbose and t["ok"]:
                continue
            obs = " | ".join(f"{s} {' '.join(st)}" for s, st in t["observed"].items())
            flag = "ok " if t["ok"] else "BAD"
            lines.append(f"    {flag} {name} [{t['role']}]{' FLAKY' if t['flaky'] else ''}: "
                         f"{obs}")
    return lines


def run(args: argparse.Namespace) -> Report:
    only, empty = selected(args)
    if empty is not None:
        return empty
    project = Path(args.project)
    if args.attack and not args.tamper:
        raise InputError("--attack selects attacks of --tamper", field="--attack",
                         hint="add --tamper")
    if args.max_mutants is not None and not args.strength:
        raise InputError("--max-mutants bounds the mutants of --strength", field="--max-mutants",
                         hint="add --strength")
    if args.max_mutants is not None and args.max_mutants < 1:
        raise InputError("--max-mutants must be at least 1", field="--max-mutants",
                         hint="use --max-mutants 10")
    opts = Options(runs=args.runs, jobs=args.jobs, seed=args.seed, derive=args.derive,
                   engine=args.engine, only=only, tamper=args.tamper, attacks=args.attack,
                   strength=args.strength, max_mutants=args.max_mutants)
    loaded = load_project(project, only=opts.only)
    n_tasks = len(loaded.tasks)
    total = n_tasks * 2 * max(1, args.runs)
    if args.tamper:
        n_attacks = len(args.attack or ATTACKS)
        total += sum(n_attacks * len(HARNESSES[t.kind]) for t in loaded.tasks)
    if args.strength:  # the fix's coverage run, then (at most) max_mutants per task
        total += n_tasks * (1 + mutant_budget(args.max_mutants, loaded.config.strength))

    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so validate removes its containers before gen exits

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with progress_bar("validate", total=total, unit="run",
                          enabled=not args.json) as bar:
            result = validate_project(project, opts, progress=bar)
    finally:
        signal.signal(signal.SIGTERM, previous)
    report = Report("validate")
    report.data = result.to_json()
    report.say(f"validate: {result.engine}, {result.runs} run(s) per state, network off, "
               f"GEN_SEED={result.seed} PYTHONHASHSEED=0 TZ=UTC LANG=C.UTF-8")
    for v in result.verdicts:
        report.lines += _task_lines(v, args.verbose)
    if result.strength is not None:
        report.say(f"strength (report: {STRENGTH_TEXT.as_posix()}):")
        report.lines += ["  " + line for line in text_lines(result.strength,
                                                          verbose=args.verbose)]
    if result.leftovers:
        report.say(f"containers left behind (removed by id): {', '.join(result.leftovers)}")
    n_bad = sum(1 for v in result.verdicts if not v.ok)
    report.say(f"validate: {len(result.verdicts) - n_bad} of {len(result.verdicts)} tasks valid"
               + (f", {n_bad} failed" if n_bad else "")
               + f" in {result.seconds:.1f}s (report: {REPORT_FILE.as_posix()})")
    if any(v.spec_written for v in result.verdicts):
        report.say("specs changed: run `gen render` to update dataset/")
    if not result.ok:
        report.exit_code = EXIT_CHECK_FAILED
    return report
