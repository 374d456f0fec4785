"""The `gen` command line: a thin layer that parses arguments and calls library functions.

Each subcommand lives in `generator/commands/<name>.py` and exposes
`register(subparsers) -> None`; the parser it adds sets `handler(args) -> Report`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import traceback
from collections.abc import Sequence

from generator import __version__
from generator.errors import EXIT_USAGE, GenError
from generator.report import Report

__all__ = ["build_parser", "main"]

# Order here is the order in `gen --help`: the pipeline order.
COMMAND_MODULES = (
    "init",
    "infra",
    "lock",
    "fetch",
    "base",
    "render",
    "build",
    "verify",
    "validate",
    "merge_shards",
    "release",
    "verify_release",
    "keygen",
    "export",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"gen: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand takes."""
    parser.add_argument(
        "--project",
        default=".",
        metavar="DIR",
        help="dataset project directory holding gen.yaml (default: .)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a machine-readable JSON report on stdout"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show tracebacks and more detail"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gen",
        description="Hermetic, reproducible builds of benchmark task datasets.",
        epilog="Exit codes: 0 ok, 1 a check failed, 2 bad usage or bad input.",
    )
    parser.add_argument("--version", action="version", version=f"gen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"generator.commands.{name}")
        except ModuleNotFoundError as exc:  # a stage that has not landed yet
            if exc.name == f"generator.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        report: Report = args.handler(args)
    except GenError as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        if as_json:
            sys.stdout.write(
                json.dumps(
                    {"command": args.command, "exit_code": exc.exit_code, **exc.to_json()},
                    indent=2,
                    sort_keys=True,
                )
                + "\n"
            )
        sys.stderr.write(f"gen {args.command}: error: {exc.one_line()}\n")
        problems = getattr(exc, "problems", None) or []
        if len(problems) > 1:
            sys.stderr.write("".join(f"  {p}\n" for p in problems))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("gen: interrupted\n")
        return 130
    report.emit(sys.stdout, as_json=bool(getattr(args, "json", False)))
    return report.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
