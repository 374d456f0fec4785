"""`gen build`: build every task's image hermetically, normalized, cached by input hash."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from generator.commands import add_shard, selected
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.image.build import build_project, project_engine
from generator.image.engines.select import ENGINES


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "build", help="build the task images (hermetic, normalized, cached by input hash)",
        description="Stage each task's context from dataset/ and the store, build it with the "
        "network off, normalize the image, push it by digest and record it in "
        ".gen/build/images.json. Tasks whose inputs did not change are not rebuilt: their "
        "input key is in .gen/build/cache/, or (when pushing) the registry holds an image "
        "another machine built for that key, which is pulled and verified instead.")
    add_common(p)
    p.add_argument("--engine", default=None, choices=("auto", *ENGINES),
                   help="container engine (default: gen.yaml's engine, else auto = buildah, "
                        "then buildx, then docker)")
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="tasks built in parallel (default: 1)")
    p.add_argument("--no-push", action="store_true", help="do not push to the registry")
    p.add_argument("--rebuild", action="store_true",
                   help="ignore the input-hash cache (local and registry): build every task")
    p.add_argument("--no-registry-cache", action="store_true",
                   help="do not pull images other machines built for the same input key from "
                        "the registry (tag build-<key>); build them here")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="build only these task ids")
    add_shard(p)
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    only, empty = selected(args)
    if empty is not None:
        return empty
    started = time.perf_counter()
    with progress_bar("build", unit="task", enabled=not args.json) as bar:
        engine, outcomes = build_project(Path(args.project),
                                         engine=project_engine(Path(args.project), args.engine),
                                         only=only, jobs=args.jobs,
                                         push=not args.no_push, rebuild=args.rebuild,
                                         registry_cache=not args.no_registry_cache,
                                         progress=bar)
    elapsed = time.perf_counter() - started
    report = Report("build")
    report.data = {
        "engine": engine, "seconds": round(elapsed, 3),
        "tasks": {o.task: {"ref": o.image.ref, "digest": o.image.digest, "key": o.image.key,
                           "cached": o.cached, "cache": o.cache, "warning": o.warning,
                           "seconds": round(o.seconds, 3),
                           "normalized": o.stats} for o in outcomes},
    }
    built = [o for o in outcomes if not o.cached]
    pulled = [o for o in outcomes if o.cache == "registry"]
    report.say(f"build ({engine}): {len(outcomes)} tasks in {elapsed:.1f}s, {len(built)} built, "
               f"{len(outcomes) - len(built) - len(pulled)} cached here, {len(pulled)} pulled "
               "from the registry cache")
    for o in outcomes:
        how = {"local": "cached", "registry": f"pulled from the registry cache in "
               f"{o.seconds:.1f}s"}.get(o.cache or "", f"built in {o.seconds:.1f}s")
        report.say(f"  {o.task}: {o.image.ref} ({how})")
        if o.warning:
            report.say(f"    warning: {o.warning}")
    return report
