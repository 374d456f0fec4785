"""`gen lock`: pin every moving input of the specs into lockfiles/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from generator.core.errors import EXIT_CHECK_FAILED
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.lock.lock import lock_project


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "lock", help="pin base images, Debian packages, Python requirements and sources",
        description="Resolve every moving input named in the specs once and write lockfiles/ "
        "(sorted, diffable). Existing pins whose inputs did not change are kept as they are.")
    add_common(p)
    p.add_argument("--update", action="store_true",
                   help="re-resolve everything, even pins whose inputs did not change")
    p.add_argument("--check", action="store_true",
                   help="offline: write nothing; exit 1 listing what is missing or stale")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="lock only these task ids")
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    started = time.perf_counter()
    with progress_bar("lock", unit="task", enabled=not args.json) as bar:
        def step(_msg: str) -> None:
            bar(1)

        result = lock_project(Path(args.project), update=args.update, check=args.check,
                              only=args.tasks or None, progress=step)
    elapsed = time.perf_counter() - started
    report = Report("lock")
    report.data = {"check": bool(args.check), "written": result.written, "kept": result.kept,
                   "removed": result.removed, "stale": result.stale, "images": result.images,
                   "seconds": round(elapsed, 3)}
    if args.check:
        if result.stale:
            report.exit_code = EXIT_CHECK_FAILED
            report.say(f"lock --check: {len(result.stale)} lock entr"
                       f"{'y is' if len(result.stale) == 1 else 'ies are'} missing or stale "
                       "(fix: run `gen lock`):")
            report.lines += [f"  {p}" for p in result.stale]
        else:
            report.say("lock --check: lockfiles/ matches the specs")
        return report
    for ref, plats in sorted(result.images.items()):
        for plat, digest in sorted(plats.items()):
            report.say(f"image {ref} ({plat}) -> {digest}")
    report.say(f"locked in {elapsed:.1f}s: {len(result.written)} written, "
               f"{len(result.kept)} kept, {len(result.removed)} removed")
    for rel in result.written:
        report.say(f"  wrote    {rel}")
    for rel in result.removed:
        report.say(f"  removed  {rel}")
    return report
