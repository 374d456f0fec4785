"""`gen render`: specs + templates + lockfiles -> dataset/."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from generator.core.errors import EXIT_CHECK_FAILED
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.render.pipeline import render


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "render",
        help="render task specs + templates + lockfiles into dataset/ (pure, offline)",
        description="Render every task into the output directory. Byte-deterministic; an error "
        "anywhere leaves the previous output untouched; unchanged files are not rewritten.",
    )
    add_common(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: <project>/dataset)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 and list the files that would change")
    p.add_argument("--no-cache", action="store_true",
                   help="ignore the stat cache in .gen/ and re-render every task")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="worker processes for large datasets (default: CPU count + 1)")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="render only these task ids")
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    project = Path(args.project)
    out = Path(args.out) if args.out else None
    started = time.perf_counter()
    with progress_bar("render", unit="task", enabled=not args.json) as bar:
        result = render(project, out, check=args.check, only=args.tasks or None,
                        use_cache=not args.no_cache, jobs=args.jobs, progress=bar)
    elapsed = time.perf_counter() - started
    out_dir = (out or project / "dataset")
    report = Report("render")
    changed = result.changed()
    report.data = {
        "out": str(out_dir),
        "check": bool(args.check),
        "tasks": result.tasks,
        "cached_tasks": result.cached_tasks,
        "written": sorted(result.written),
        "removed": sorted(result.removed),
        "unchanged_files": result.unchanged,
        "seconds": round(elapsed, 3),
    }
    if args.check:
        if changed:
            report.exit_code = EXIT_CHECK_FAILED
            report.say(f"render --check: {len(changed)} file(s) in {out_dir} differ from the "
                       "specs (fix: run `gen render`):")
            for rel in sorted(result.written):
                report.say(f"  changed  {rel}")
            for rel in sorted(result.removed):
                report.say(f"  stale    {rel}")
        else:
            report.say(f"render --check: {out_dir} is up to date ({result.tasks} tasks)")
        return report
    report.say(
        f"rendered {result.tasks} tasks into {out_dir} in {elapsed:.2f}s: "
        f"{len(result.written)} written, {len(result.removed)} removed, "
        f"{result.unchanged} unchanged, {result.cached_tasks} tasks unchanged since last render"
    )
    if args.verbose:
        for rel in sorted(result.written):
            print(f"  wrote    {rel}", file=sys.stderr)
        for rel in sorted(result.removed):
            print(f"  removed  {rel}", file=sys.stderr)
    return report
