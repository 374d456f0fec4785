"""The `gen` command line: a thin layer that parses arguments and calls library functions.

Each subcommand lives in `generator/commands/<name>.py` and exposes
`register(subparsers) -> None`; the parser it adds sets `handler(args) -> Report`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from generator import __version__
from generator.core.errors import EXIT_INTERRUPTED, EXIT_USAGE, GenError, ToolError
from generator.core.fsutil import BUSY_LOCK, ProjectBusy, project_lock
from generator.core.report import Report

__all__ = ["build_parser", "main"]

# Order here is the order in `gen --help`: the pipeline order.
COMMAND_MODULES = (
    "init",
    "infra",
    "lock",
    "fetch",
    "cache",
    "base",
    "render",
    "build",
    "verify",
    "validate",
    "merge_shards",
    "gc",
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


def _run(args: argparse.Namespace) -> Report:
    """The command's handler, under the project's lock when it works on a project's .gen/
    (`busy` = "shared" for most, "exclusive" for gen gc, "snapshot" for gen release; see
    fsutil.project_lock)."""
    busy = getattr(args, "busy", None)
    project = Path(getattr(args, "project", "."))
    if busy is None or not (project / "gen.yaml").is_file():
        return args.handler(args)  # type: ignore[no-any-return]
    read_only = bool(getattr(args, "check", False) or getattr(args, "dry_run", False))
    try:
        with project_lock(project, busy, create=not read_only):
            return args.handler(args)  # type: ignore[no-any-return]
    except ProjectBusy as exc:
        raise ToolError(f"another gen command is working on {project} (it holds {exc})",
                        hint="wait until it ends, then run this again") from None
    except OSError as exc:
        if exc.filename and str(exc.filename).endswith(BUSY_LOCK):
            raise ToolError(f"cannot take the project lock {exc.filename}: {exc.strerror}",
                            hint="make the project's .gen/ writable") from None
        raise


@contextlib.contextmanager
def _verbose_log(enabled: bool) -> Iterator[None]:
    """With -v, the `gen` logger's detail (e.g. engine warnings, which error messages leave
    out) goes to stderr, one `gen: <program>: <line>` line each."""
    if not enabled:
        yield
        return
    log = logging.getLogger("gen")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gen: %(message)s"))
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    as_json = bool(getattr(args, "json", False))
    try:
        with _verbose_log(bool(getattr(args, "verbose", False))):
            report: Report = _run(args)
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
        return EXIT_INTERRUPTED
    report.emit(sys.stdout, as_json=bool(getattr(args, "json", False)))
    return report.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
