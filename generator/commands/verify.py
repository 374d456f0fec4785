"""`gen verify-reproducible`: build each task twice, differently, and prove the bytes equal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from generator.commands import add_shard, selected
from generator.core.errors import EXIT_CHECK_FAILED
from generator.core.fsutil import atomic_write
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.image.build import project_engine
from generator.image.engines.select import ENGINES
from generator.image.verify import other_engine, verify_project


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "verify-reproducible", help="build every task twice from scratch and compare digests",
        description="Build each task twice with nothing shared and varied conditions (file "
        "order, umask, TZ/LANG, build dir, clock; --cross-engine: another engine), normalize, "
        "compare the manifest digests. Exit 1 with a per-layer, per-file diff on a mismatch.")
    p.add_argument("--project", default=".", metavar="DIR",
                   help="dataset project directory holding gen.yaml (default: .)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="machine-readable report: on stdout, or into FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    p.add_argument("--engine", default=None, choices=("auto", *ENGINES),
                   help="engine for both builds (default: gen.yaml's engine, else auto)")
    p.add_argument("--cross-engine", action="store_true",
                   help="build the second time with another engine")
    p.add_argument("--keep", metavar="DIR", help="keep both normalized OCI layouts under DIR")
    p.add_argument("--limit", type=int, default=50, help="differing files shown per layer")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="verify only these task ids")
    add_shard(p)
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    only, empty = selected(args)
    to_file = args.json not in (None, "-")
    if empty is not None:
        if to_file:  # --json FILE: the (empty) report goes there, as a full one would
            atomic_write(Path(args.json), (json.dumps(empty.to_json(), indent=2,
                                                      sort_keys=True) + "\n").encode())
            args.json = None
        return empty
    project = Path(args.project)
    with progress_bar("verify", unit="task", enabled=args.json is None) as bar:
        engine = project_engine(project, args.engine)
        result = verify_project(project, engine=engine,
                                engine_b=other_engine(project, engine) if args.cross_engine
                                else None, only=only,
                                keep=Path(args.keep) if args.keep else None, progress=bar)
    report = Report("verify-reproducible")
    report.data = result.to_json()
    if to_file:
        atomic_write(Path(args.json), (json.dumps(report.to_json(), indent=2, sort_keys=True)
                                       + "\n").encode())
        args.json = None  # the file has the JSON; print text
    if not result.ok:
        report.exit_code = EXIT_CHECK_FAILED
    for v in result.verdicts:
        eng = v.engine_a if v.engine_a == v.engine_b else f"{v.engine_a} vs {v.engine_b}"
        if v.same_filesystem_only:
            report.say(f"same files    {v.task}: {v.digest_a} vs {v.digest_b} ({eng}; the "
                       "filesystems and runtime config are identical, the layer layouts differ "
                       "by engine)")
        elif v.identical:
            raw = "raw output identical too" if v.raw_identical else \
                "identical only after normalization"
            report.say(f"reproducible  {v.task}: {v.digest_a} ({eng}; {raw}; builds "
                       f"{v.seconds.get('build_a', 0):.1f}s/{v.seconds.get('build_b', 0):.1f}s, "
                       f"total {v.seconds.get('total', 0):.1f}s)")
        else:
            report.say(f"DIFFERS       {v.task} ({eng}):")
            if v.diff is not None:
                report.lines += ["  " + ln for ln in v.diff.text(limit=args.limit)]
        rec = v.recorded
        if rec is not None and rec["matches"] is False:
            report.say(f"  RECORDED IMAGE DIFFERS: {rec['why']}")
        elif rec is not None and rec["matches"] is None:
            report.say(f"  the image in .gen/build/images.json was not compared: {rec['why']}")
    n_bad = sum(1 for v in result.verdicts if not v.identical)
    n_rec = sum(1 for v in result.verdicts if not v.recorded_ok)
    report.say(f"verify-reproducible: {len(result.verdicts) - n_bad} of {len(result.verdicts)} "
               f"tasks byte-identical in {result.seconds:.1f}s"
               + (f"; {n_bad} differ (fix: see the diff above)" if n_bad else "")
               + (f"; {n_rec} recorded image(s) are not what the inputs build" if n_rec else ""))
    return report
