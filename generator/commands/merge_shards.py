"""`gen merge-shards`: join the `.gen/` of `--shard I/N` jobs into this project's."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from generator.core.report import Report
from generator.release.shard import merge_shards


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "merge-shards", help="join the .gen/ of `--shard I/N` jobs: one images.json, one "
        "validate and one verify report",
        description="Each DIR is the .gen/ directory (or the project) a shard job left after "
        "`gen build --shard I/N` (and `gen validate --shard I/N`, `gen verify-reproducible "
        "--shard I/N`). Checks that every task of the project has exactly one image, that no "
        "shard ran on other tasks, that the reports ran under the same conditions and that "
        "the validate reports cover every task; then writes .gen/build/images.json and the "
        "merged reports (and copies the OCI layouts and build cache records the shards hold "
        "for the merged images). Writes nothing when a "
        "check fails (exit 1). Then `gen release` signs the whole.")
    add_common(p)
    p.add_argument("shards", nargs="+", metavar="DIR", help="a shard job's .gen/ directory")
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    result = merge_shards(Path(args.project), [Path(d) for d in args.shards])
    report = Report("merge-shards")
    report.data = asdict(result)
    report.say(f"merged {len(args.shards)} shard(s): {result.images} task images into "
               ".gen/build/images.json")
    for kind, n in sorted(result.reports.items()):
        report.say(f"  {kind} report: {n} tasks (.gen/{kind}/report.json)")
    if result.layouts_copied:
        report.say(f"  copied {result.layouts_copied} OCI layout(s) into .gen/build/oci/")
    if result.records_copied:
        report.say(f"  copied {result.records_copied} build cache record(s) into "
                   ".gen/build/cache/")
    if result.layouts_missing:
        report.say(f"  no OCI layout in the shard dirs for {len(result.layouts_missing)} "
                   "task(s): the release needs only digests; to validate here, copy the "
                   "shards' .gen/build/oci/ too")
    return report
