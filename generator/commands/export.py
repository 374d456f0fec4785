"""`gen export --format tb|harbor|swebench --out DIR`: layouts the real consumers load."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from generator.core.errors import UsageError
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.export.docker import load_into_docker
from generator.export.run import FORMATS, export

_RUN_HINTS = {
    "tb": "tb run --dataset-path {out} --agent oracle",
    "harbor": "harbor run -p {out} -a oracle",
    "swebench": "swebench eval {out}/instances.jsonl --gold --run-id gen",
}


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="write the dataset in a layout a consumer loads (Terminal-Bench, Harbor, SWE-bench)",
        description="Export the rendered dataset and the built images (by digest) for a "
        "consumer: tb (Terminal-Bench task dirs), harbor (Harbor task dirs with task.toml), "
        "swebench (instances.jsonl + a SWE-bench task repo). Deterministic; linted for what "
        "the consumer would reject or silently ignore; written atomically.",
    )
    add_common(p)
    p.add_argument("--format", required=True, choices=FORMATS, dest="format",
                   help="the consumer to export for")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the export folder (replaced as a whole; must be new, empty or an "
                   "earlier export of the same format)")
    p.add_argument("--allow-unbuilt", action="store_true",
                   help="harbor/swebench: export tasks without a built image with their "
                   "Dockerfile build instead of refusing")
    p.add_argument("--load", action="store_true",
                   help="swebench: also pull each image by digest into the Docker engine and "
                   "tag it under the name the harness looks up")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="worker processes for rendering large datasets (default: CPU count + 1)")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="export only these task ids")
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    if args.load and args.format != "swebench":
        raise UsageError("--load only applies to --format swebench",
                         hint="drop --load (tb and harbor reference images by digest)")
    project = Path(args.project)
    out = Path(args.out)
    started = time.perf_counter()
    with progress_bar(f"export {args.format}", unit="task", enabled=not args.json) as bar:
        plan = export(project, args.format, out, allow_unbuilt=args.allow_unbuilt,
                      only=args.tasks or None, jobs=args.jobs, progress=bar)
    loaded: list[dict[str, str]] = []
    if args.load:
        loaded = load_into_docker(plan.docker_tags)
    elapsed = time.perf_counter() - started
    report = Report("export")
    report.data = {
        "format": plan.format,
        "out": str(out),
        "tasks": plan.tasks,
        "files": len(plan.files),
        "images": dict(sorted(plan.images.items())),
        "unbuilt": sorted(plan.unbuilt),
        "docker_tags": dict(sorted(plan.docker_tags.items())),
        "loaded": loaded,
        "unsealed": sorted(plan.unsealed),
        "seconds": round(elapsed, 3),
    }
    report.say(f"exported {len(plan.tasks)} task(s) as {plan.format} into {out} "
               f"({len(plan.files)} files, {len(plan.images)} image(s) by digest) "
               f"in {elapsed:.2f}s")
    if plan.unbuilt:
        shown = sorted(plan.unbuilt)
        listed = shown if args.verbose or len(shown) <= 10 else [*shown[:10], "..."]
        report.say(f"  {len(shown)} task(s) without a built image, exported with their "
                   f"Dockerfile build: {', '.join(listed)}")
        report.say("  their test scripts refuse to grade until exported again after `gen build` "
                   "(no image to take the toolchain record from)")
    if plan.unsealed:
        report.say(f"  warning: {len(plan.unsealed)} task(s) not graded sealed (their test "
                   f"command is not one plain pytest call, or a template override drops it): "
                   f"{', '.join(sorted(plan.unsealed))}; an agent with root in the container "
                   "can fake a pass (see docs/grading.md; check with gen validate --tamper)")
    for item in loaded:
        report.say(f"  docker: {item['name']} -> {item['ref']}")
    if plan.format == "swebench" and plan.docker_tags and not args.load:
        report.say("  images: tag them for the harness with `gen export --format swebench "
                   "--load` (pulls by digest)")
    report.say("run it: " + _RUN_HINTS[plan.format].format(out=out))
    return report
