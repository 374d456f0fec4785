"""`gen init`: scaffold a dataset project (gen.yaml, one example task, templates/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core.report import Report
from generator.spec.scaffold import init_project

NEXT_STEPS = (  # (command, what it does)
    ("gen infra up", "as root: a registry on 127.0.0.1:5000, a Docker engine"),
    ('eval "$(gen infra env)"', "point gen and docker at them"),
    ("gen base build", "the Debian base image, into that registry"),
    ("gen lock && gen fetch", "pin every input by hash; download it into the store"),
    ("gen render", "write dataset/"),
    ("gen build && gen validate", "build the images; tests fail before the solution, pass after"),
)


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "init", help="scaffold a dataset project (gen.yaml, one example task, templates/)",
        description="Write gen.yaml, tasks/hello-world/ (a small Terminal-Bench style task "
        "with tests and a solution), templates/README.md and a .gitignore into the project "
        "directory (created if missing). Refuses a directory that already holds gen.yaml, "
        "tasks/, templates/, lockfiles/ or dataset/; never overwrites (an existing .gitignore "
        "is kept).")
    add_common(p)
    p.add_argument("--name", metavar="NAME",
                   help="dataset name (default: the directory's name, lowercased)")
    p.add_argument("--source-date-epoch", type=int, metavar="SECONDS", default=None,
                   help="the instant every timestamp is clamped to (default: today 00:00 UTC)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Report:
    result = init_project(Path(args.project), name=args.name,
                          source_date_epoch=args.source_date_epoch)
    report = Report("init")
    report.data = {"project": str(result.project), "name": result.name,
                   "source_date_epoch": result.source_date_epoch, "created": result.created,
                   "kept": result.kept, "next": [cmd for cmd, _ in NEXT_STEPS]}
    report.say(f"created dataset project '{result.name}' in {result.project}:")
    report.lines.extend(f"  {rel}" for rel in result.created)
    for rel in result.kept:
        report.say(f"  kept the existing {rel}: add .gen/ and .*.gen-staging/ to it")
    report.say("next:")
    report.lines.extend(f"  {cmd:<26} ({why})" for cmd, why in NEXT_STEPS)
    return report
