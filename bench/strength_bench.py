"""Benchmark: `gen validate --strength` on the example SWE task.

    eval "$(gen infra env)"
    python bench/strength_bench.py [--project .] [--task inflection-humanize-id-suffix]
                                   [--repeat 3] [--rounds 2]

Needs the project built and fetched (`gen build`, `gen fetch`: the coverage.py wheel). Prints:

- the overhead of coverage.py over a plain test run, medians of `--repeat`: a whole test run
  as --strength makes one (a fresh container, the fix, the tests copied in, the task's pytest
  call) under coverage.py (per-test contexts) and without it; then, inside such a run,
  pytest's own time and the runner's (coverage's start, save, combine and report included).
  Target: coverage adds <= 30% to a test run.
- mutants per minute at `-j 1` and `-j 2`: the task's mutant runs exactly as --strength runs
  them (a fresh container each, the fix, the mutant, the sealed eval.sh), `--rounds` times
  over the task's mutants, wall time of that phase only. Target: >= 1.6x the -j 1 rate with 2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from generator.validate.mutate import changed_lines_from_patch  # noqa: E402
from generator.validate.project import open_task  # noqa: E402
from generator.validate.runner import remove_all  # noqa: E402
from generator.validate.strength import (  # noqa: E402
    FileChange,
    _Session,
    coverage_lib,
    generate,
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", type=Path, default=ROOT)
    ap.add_argument("--task", default="inflection-humanize-id-suffix")
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--repeat", type=int, default=3, help="coverage vs plain runs (median)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="passes over the task's mutants per -j setting")
    args = ap.parse_args()
    try:
        tr, wheel, problem = open_task(args.project, args.task, engine=args.engine)
        if wheel is None:
            print(f"strength_bench: {problem}", file=sys.stderr)
            return 1
        s = _Session(tr, coverage_lib(wheel))
        task = tr.task
        patched = changed_lines_from_patch(getattr(task, "patch", ""))
        lines = {p: sorted(v) for p, v in patched.items() if p.endswith(".py")} or None

        cov_t, plain_t, cov_all, plain_all = [], [], [], []
        gold = None
        for _ in range(args.repeat):
            got, err, plain = s.coverage_run(None, lines=lines, plain_too=True)
            if got is None or plain is None:
                print(f"strength_bench: the coverage run failed: {err}", file=sys.stderr)
                return 1
            gold = got
            cov_t.append(got["test_seconds"])
            plain_t.append(plain["test_seconds"])
            cov_all.append(got["total_seconds"])
            plain_all.append(plain["total_seconds"])
        cov_w, plain_w = [], []  # a whole test run: fresh container, fix, tests, pytest
        for _ in range(args.repeat):
            for measure, into in ((True, cov_w), (False, plain_w)):
                t0 = time.monotonic()
                got, err, _ = s.coverage_run(None, lines=lines, measure=measure)
                if got is None:
                    print(f"strength_bench: the test run failed: {err}", file=sys.stderr)
                    return 1
                into.append(time.monotonic() - t0)
        c, p = statistics.median(cov_t), statistics.median(plain_t)
        ca, pa = statistics.median(cov_all), statistics.median(plain_all)
        print(f"task {task.id}: {len(gold['outcomes']) if gold else 0} tests, coverage.py "
              f"{gold['coverage_version'] if gold else '?'}, median of {args.repeat}")
        cw, pw = statistics.median(cov_w), statistics.median(plain_w)
        print(f"coverage overhead on a test run (a fresh container, the fix, the tests, pytest; "
              f"as --strength runs one): plain {pw:.2f}s, under coverage {cw:.2f}s: "
              f"+{(cw / pw - 1) * 100:.0f}% (target <= 30%)")
        print(f"  of which pytest's own time: plain {p:.2f}s, under coverage {c:.2f}s: "
              f"+{(c / p - 1) * 100:.0f}% (sys.settrace on CPython < 3.12 slows every call)")
        print(f"  of which the runner (pytest plus coverage's start, save, combine, report): "
              f"plain {pa:.2f}s, under coverage {ca:.2f}s: +{(ca / pa - 1) * 100:.0f}%")

        root = s.workdir.rstrip("/") + "/"
        changes = [FileChange(path.removeprefix(root), f["text"],
                              patched.get(path.removeprefix(root), frozenset()))
                   for path, f in sorted((gold or {}).get("files", {}).items())]
        mutants, _ = generate(changes)
        if not mutants:
            print("strength_bench: the task's fix has no mutants", file=sys.stderr)
            return 1
        work = mutants * args.rounds
        timeout = float(task.timeouts.test_sec)
        rates = {}
        for jobs in (1, 2):
            t0 = time.monotonic()
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(lambda m: s.test_run(m, timeout)[0], work))
            wall = time.monotonic() - t0
            rates[jobs] = len(work) / wall * 60
            kinds = {k: results.count(k) for k in sorted(set(results))}
            print(f"-j {jobs}: {len(work)} mutant runs ({len(mutants)} mutants x "
                  f"{args.rounds}) in {wall:.1f}s: {rates[jobs]:.1f} mutants/min {kinds}")
        print(f"-j 2 / -j 1: {rates[2] / rates[1]:.2f}x (target >= 1.6x)")
        return 0
    finally:
        remove_all()


if __name__ == "__main__":
    sys.exit(main())
