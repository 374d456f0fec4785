"""The `gen` subcommands: one module each, `register(subparsers)` and a handler."""

from __future__ import annotations

import argparse
from pathlib import Path

from generator.core.errors import UsageError
from generator.core.report import Report
from generator.release.shard import Shard, parse_shard, shard_tasks


def _shard_arg(text: str) -> Shard:
    try:
        return parse_shard(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(exc.one_line()) from None


def add_shard(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard", type=_shard_arg, metavar="I/N", default=None,
        help="work on the I-th of N shards of the sorted task ids (every N-th task), e.g. one "
        "CI matrix job each; `gen merge-shards` joins their .gen/ afterwards")


def selected(args: argparse.Namespace) -> tuple[list[str] | None, Report | None]:
    """(task ids to work on, None = all) from TASK... and --shard; or, for a shard with no
    tasks (more shards than tasks), the report to return right away."""
    shard = getattr(args, "shard", None)
    only = shard_tasks(Path(args.project), shard, args.tasks)
    if only == [] and shard is not None:
        report = Report(args.command)
        report.data = {"shard": str(shard), "tasks": []}
        report.say(f"{args.command}: shard {shard} has no tasks (fewer tasks than shards)")
        return only, report
    return only, None
