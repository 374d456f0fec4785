"""Benchmark: gen's own work per task in a full render, in CPU instructions (valgrind).

    python bench/render_instructions.py [--tasks 300] [--dir DIR]

This machine's speed drifts (bench/render_bench.py's CPU check shows the same loop taking
30 to 65 ms), so wall and CPU seconds cannot tell a 5% change in gen's code from the machine.
Instruction counts can: `valgrind --tool=callgrind` counts the instructions a process runs in
user space, and gives the same count for the same code and inputs whatever else the machine
does. Each phase of one worker is run on 10 and on 10 + N synthetic tasks (the tasks
render_bench.py generates) and the difference is divided by N, so start-up, imports and
template compilation cancel out:

    load    list the task dir, read its lock files and spec, parse and validate the spec
    render  the task's context, six templates, the hermeticity lint
    write   create its directories and files in a staging dir on /dev/shm, and sign them

Kernel work (the file system) is not counted here: render_bench.py prints it as system time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = 10  # tasks in the baseline run (its count is subtracted)
PHASES = ("load", "render", "write")


def child(project: Path, phase: str, n: int, scratch: Path) -> None:
    """Run one worker's phases up to `phase` on the first n tasks (under valgrind)."""
    sys.path[:0] = [str(ROOT)]
    import generator.render.task as T
    import generator.render.workers as R

    staging = scratch / f"stage-{phase}-{n}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    job = R._Job(os.fspath(project), os.fspath(scratch / "out"), os.fspath(staging), False,
                 True, empty_out=True)
    R._tune_gc()
    worker = R._Worker(job)
    dirs = [project / "tasks" / f"task-{i:05d}" for i in range(n)]
    if phase == "write":  # everything a worker does: load, render, write, sign
        for i in range(0, n, 100):
            worker.process(dirs[i:i + 100])
    else:
        for d in dirs:
            task, listing, _sigs = worker.load(d)
            if phase == "render":
                T.render_task(task, worker.config, worker.locks, worker.templates, listing)
    shutil.rmtree(staging, ignore_errors=True)


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def instructions(project: Path, phase: str, n: int, scratch: Path) -> int:
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, __file__, "--child", phase, str(n), str(project), str(scratch)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"valgrind failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def per_task(counts: dict[str, tuple[int, int]], n: int) -> dict[str, float]:
    """Instructions per task of each phase alone, from cumulative (base, base + n) counts."""
    cumulative = {p: (big - small) / n for p, (small, big) in counts.items()}
    out, before = {}, 0.0
    for phase in PHASES:
        out[phase] = cumulative[phase] - before
        before = cumulative[phase]
    out["total"] = before
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        phase, n, project, scratch = sys.argv[2:6]
        child(Path(project), phase, int(n), Path(scratch))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=300, help="N (default 300)")
    ap.add_argument("--dir", metavar="DIR", help="make the temporary project under DIR")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (fix: apt-get install valgrind)", file=sys.stderr)
        return 2
    sys.path[:0] = [str(ROOT / "bench")]
    from render_bench import make_project

    root = Path(tempfile.mkdtemp(prefix="gen-instr-", dir=args.dir))
    scratch = Path(tempfile.mkdtemp(prefix="gen-instr-", dir="/dev/shm"
                                    if os.path.isdir("/dev/shm") else None))
    try:
        make_project(root, BASE + args.tasks)
        counts = {p: (instructions(root, p, BASE, scratch),
                      instructions(root, p, BASE + args.tasks, scratch)) for p in PHASES}
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    result = per_task(counts, args.tasks)
    print(f"instructions per task (user space, valgrind callgrind, {args.tasks} tasks "
          f"minus {BASE}):")
    for phase in (*PHASES, "total"):
        share = result[phase] / result["total"] if result["total"] else 0.0
        print(f"  {phase:7s} {result[phase] / 1e3:8,.0f} k  ({share:.0%})")
    print(f"  10,000 tasks: {result['total'] * 1e4 / 1e9:.1f} G instructions of gen's own code")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
