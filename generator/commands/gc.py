"""`gen gc`: delete old images, cache records and leftovers from the project's `.gen/`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core.report import Report
from generator.image.gc import collect_garbage

SHOWN = 20  # paths listed in the text report (the JSON report lists every one)


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "gc", help="delete image layouts, cache records and leftovers no current image needs",
        description="Delete from .gen/ the OCI layouts and build-cache records of images "
        ".gen/build/images.json no longer names (a task changed and was rebuilt, or was "
        "removed), the temporary directories of interrupted runs, and in buildah's storage "
        "(.gen/build/buildah) the base images no lock pins any more and the working "
        "containers of killed builds. With --store, also the "
        "store files that no lockfile, locked base image or kept image references, and base "
        "images lockfiles/images.lock no longer pins. Runs only while no other gen command "
        "works on the project (exit 1 otherwise); never deletes a directory with a file "
        "system mounted below it.")
    add_common(p)
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="only list what would be deleted")
    p.add_argument("--store", action="store_true",
                   help="also prune the project's own store (.gen/cas; refused when GEN_CAS "
                        "points to a store other projects may share)")
    p.set_defaults(handler=run, busy="exclusive")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def run(args: argparse.Namespace) -> Report:
    result = collect_garbage(Path(args.project), dry_run=args.dry_run, store=args.store)
    report = Report("gc")
    report.data = {"dry_run": result.dry_run, "freed_bytes": result.freed,
                   "removed": [r.to_json() for r in result.removed],
                   "skipped": [{"path": p, "why": w} for p, w in result.skipped],
                   "kept": result.kept}
    kinds = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}"
                      for kind, n in sorted(result.by_kind().items())) or "nothing"
    verb = "would delete" if result.dry_run else "deleted"
    report.say(f"gc: {verb} {kinds} ({_size(result.freed)}"
               f"{' to free' if result.dry_run else ' freed'})")
    for r in result.removed[:SHOWN]:
        report.say(f"  {r.kind}: {r.path} ({_size(r.bytes)})")
    if len(result.removed) > SHOWN:
        report.say(f"  ... and {len(result.removed) - SHOWN} more (--json lists all)")
    for path, why in result.skipped:
        report.say(f"  kept {path}: {why}")
    report.say("  kept: " + ", ".join(f"{n} {k}" for k, n in sorted(result.kept.items())))
    return report
