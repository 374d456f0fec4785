"""Error types and exit codes: the one place that decides how gen fails.

Exit codes (the contract every command keeps):
    0  success
    1  a check failed (render --check drift, stale lock, hash mismatch, non-reproducible build...)
    2  bad usage or bad input (spec, lockfile, template, command line)

Every error carries a one-line message that names the file, the field and the fix.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CheckFailed",
    "GenError",
    "InputError",
    "LintError",
    "LockError",
    "SpecError",
    "ToolError",
    "UsageError",
]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as a shell reports a command ended by Ctrl-C


def printable(text: str) -> str:
    """`text` on one line: control characters (newline, tab, ...) shown escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class GenError(Exception):
    """Base of every error gen reports to a user."""

    exit_code: int = EXIT_CHECK_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        if self.hint:
            return printable(f"{self.message} (fix: {self.hint})")
        return printable(self.message)

    def to_json(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


class UsageError(GenError):
    """The command line is wrong."""

    exit_code = EXIT_USAGE


class InputError(GenError):
    """An input file is wrong: exit 2, one line naming file, line, field and fix."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.field = field

    def one_line(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        fld = f" field '{self.field}':" if self.field else ""
        text = f"{where}:{fld} {self.message}"
        if self.hint:
            text += f" (fix: {self.hint})"
        return printable(text)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data.update({"file": self.file, "line": self.line, "field": self.field})
        return data


class SpecError(InputError):
    """A task spec or gen.yaml does not match the schema."""


class LockError(InputError):
    """A lockfile is missing, stale, malformed, or pins nothing."""


class LintError(InputError):
    """Rendered output would not be hermetic (unpinned FROM, curl | sh, ...)."""


class ToolError(GenError):
    """An external tool (engine, registry, mirror) failed or is missing: exit 1."""

    exit_code = EXIT_CHECK_FAILED


@dataclass
class CheckFailed(GenError):
    """A check ran and found problems (exit 1). `problems` lists them, one line each."""

    summary: str
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.summary)

    def one_line(self) -> str:
        return printable(self.summary)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "problems": list(self.problems)}
