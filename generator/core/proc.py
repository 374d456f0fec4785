"""The one place gen runs external programs (engines, skopeo, mmdebstrap, apt, git, uv).

Every call goes through `run()` (a daemon: `spawn()`): a missing program, a timeout or a failure
becomes a ToolError whose one line names the program, what it was doing and the tail of its
stderr. No other module of gen imports subprocess: ruff's TID251 rule (pyproject.toml) and
tests/unit/test_one_door.py fail otherwise.

A program's warnings (buildah's and skopeo's `level=warning` / `WARN[0000]` lines, such as
the CNI config warnings, docker's `WARNING:` lines) are not errors: they are kept out of every
error message (`tail`, `split_warnings`) and logged to the `gen` logger, which `gen -v` prints.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from generator.core.errors import ToolError

__all__ = ["DEVNULL", "LOG", "PIPE", "Result", "TimedOut", "failure_detail", "is_warning",
           "log_warnings", "run", "spawn", "split_warnings", "tail", "which"]

Result = subprocess.CompletedProcess
PIPE = subprocess.PIPE  # for run(stdout=...): callers never import subprocess
DEVNULL = subprocess.DEVNULL
LOG = logging.getLogger("gen")  # detail for `-v` (cli.main shows it; silent otherwise)

# A line that is a program's log message below error level, in the formats the container
# tools print: logrus key=value (`time="..." level=warning msg="..."`), logrus on a terminal
# (`WARN[0000] ...`), docker/buildkit (`WARNING: ...`, `1 warning found ...`).
_WARNING_RE = re.compile(
    r'\s*(?:time="[^"]*"\s+)?level="?(?:warning|warn|info|debug|trace)\b'
    r"|\s*(?:WARN|WARNING|INFO|DEBU|DEBUG|TRAC|TRACE)\[[^\]]*\]"
    r"|\s*WARNING:\s"
    r"|\s*\d+ warnings? found\b")


class TimedOut(ToolError):
    """A program ran past its timeout and was killed: a ToolError whose message names the
    program and the limit, holding what the program printed before (`stdout`, `stderr`: bytes
    or None; the kill comes before any decoding). Reported as the ToolError it is."""

    def __init__(self, message: str, *, hint: str | None, program: str, timeout: float,
                 stdout: bytes | str | None, stderr: bytes | str | None) -> None:
        super().__init__(message, hint=hint)
        self.program = program
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "error": "ToolError"}


def is_warning(line: str) -> bool:
    """Is this line of a program's stderr a warning (or info/debug message), not an error?"""
    return _WARNING_RE.match(line) is not None


def split_warnings(text: str | bytes | None) -> tuple[list[str], list[str]]:
    """(the other non-blank lines, the warning lines) of a program's output, in order."""
    if text is None:
        return [], []
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept: list[str] = []
    warnings: list[str] = []
    for ln in text.splitlines():
        if ln.strip():
            (warnings if is_warning(ln) else kept).append(ln.rstrip())
    return kept, warnings


def log_warnings(program: str, text: str | bytes | None) -> None:
    """Log a program's warning lines (shown by `gen -v`)."""
    if not LOG.isEnabledFor(logging.INFO):
        return
    for ln in split_warnings(text)[1]:
        LOG.info("%s: %s", program, ln.strip())


def which(program: str, *, fix: str | None = None) -> str:
    """Absolute path of `program`, or a ToolError naming how to get it."""
    found = shutil.which(program)
    if found is None:
        raise ToolError(f"'{program}' is not installed or not on PATH",
                        hint=fix or "run `gen infra install`")
    return found


def tail(text: str | bytes | None, lines: int = 6, *, sep: str = " | ",
         warnings: bool = False) -> str:
    """The last `lines` non-blank lines of a program's output, joined with `sep` (one line for an
    error message by default). Its warning lines (split_warnings) are left out unless
    `warnings`: a test's own output keeps them, they are what it printed."""
    kept = split_warnings(text)[0]
    if warnings:
        kept = [ln for ln in _text(text).splitlines() if ln.strip()]
    return sep.join((ln.strip() if sep == " | " else ln.rstrip()) for ln in kept[-lines:])


def _text(text: str | bytes | None) -> str:
    if text is None:
        return ""
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


def failure_detail(program: str, stderr: str | bytes | None,
                   stdout: str | bytes | None = None, lines: int = 6) -> str:
    """What a failed program's error message says of its output: the tail of its stderr
    without the warnings (else of its stdout); its warnings are logged for `-v`."""
    log_warnings(program, stderr)
    got = tail(stderr, lines) or tail(stdout, lines)
    if got:
        return got
    if split_warnings(stderr)[1]:
        return "no error message, only warnings (shown with -v)"
    return "no output"


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    timeout: float | None = None,
    check: bool = True,
    capture: bool = True,
    text: bool = True,
    stdout: int | None = None,
    umask: int | None = None,
    fix: str | None = None,
    timeout_fix: str | None = None,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run `cmd`; `what` says what it is for ("push the base image"), used in errors.

    - A program named without a `/` is looked up on PATH first (`which`): not installed is a
      ToolError (fix: `gen infra install`); a path that does not exist is one with `fix`.
    - `env` replaces the environment (default: gen's own), `extra_env` is added to it.
    - `capture` (default): stdout and stderr are returned, text unless `text=False` or there is
      `input` (bytes written to stdin: then the output is bytes too); `stdout` (PIPE, DEVNULL,
      a file descriptor) overrides where stdout goes. Not `capture`: the output passes through
      to gen's own stdout/stderr.
    - `umask` is set in the child only, between fork and exec (Popen's `umask`, done in C: safe
      with gen's threads, unlike a `preexec_fn`); gen's own umask never changes.
    - `timeout` (seconds): the program is killed when it overruns it and `TimedOut` (a
      ToolError naming the program and the limit, hint `timeout_fix`, else `fix`) is raised.
    - `check` (default): a non-zero exit is a ToolError carrying the tail of the program's
      stderr. With `check=False` the result is returned whatever the exit code; a failed one's
      warnings are left to the caller's `failure_detail` (which logs them), a successful
      one's are logged here, as with `check`.
    """
    argv = [os.fspath(c) for c in cmd]
    if "/" not in argv[0]:
        argv[0] = which(argv[0])
    name = Path(argv[0]).name
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    try:
        result = subprocess.run(
            argv, cwd=cwd, env=full_env, input=input, timeout=timeout, check=False,
            stdout=stdout if stdout is not None else (subprocess.PIPE if capture else None),
            stderr=subprocess.PIPE if capture else None,
            text=text if input is None else False,
            umask=-1 if umask is None else umask,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"cannot {what}: '{argv[0]}' not found", hint=fix
                        or "run `gen infra install`") from exc
    except subprocess.TimeoutExpired as exc:
        raise TimedOut(f"cannot {what}: {name} timed out after {timeout:.0f}s",
                       hint=timeout_fix or fix, program=name, timeout=float(timeout or 0),
                       stdout=exc.stdout, stderr=exc.stderr) from exc
    if check and result.returncode != 0:
        detail = failure_detail(name, result.stderr, result.stdout)
        raise ToolError(f"cannot {what}: `{name} {' '.join(argv[1:3])}...` exited "
                        f"{result.returncode}: {detail}", hint=fix)
    if capture and result.returncode == 0:
        log_warnings(name, result.stderr)
    return result


def spawn(cmd: Sequence[str | os.PathLike[str]], *, what: str, log: Path,
          fix: str | None = None) -> int:
    """Start a daemon that outlives gen: its own session, stdin from /dev/null, stdout and
    stderr appended to `log`. Returns its PID (the caller records it to stop it by PID)."""
    argv = [os.fspath(c) for c in cmd]
    if "/" not in argv[0]:
        argv[0] = which(argv[0], fix=fix)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     start_new_session=True, close_fds=True)
        except OSError as exc:
            raise ToolError(f"cannot {what}: {exc}", hint=fix) from exc
    child.returncode = 0  # not waited for here: keep Popen's destructor quiet
    return child.pid

