"""The one place gen runs external programs (engines, skopeo, mmdebstrap, apt, git, uv).

Every call goes through `run()`: a missing program or a failure becomes a ToolError whose one
line names the program, what it was doing and the tail of its stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from generator.errors import ToolError

__all__ = ["Result", "run", "spawn", "tail", "which"]

Result = subprocess.CompletedProcess


def which(program: str, *, fix: str | None = None) -> str:
    """Absolute path of `program`, or a ToolError naming how to get it."""
    found = shutil.which(program)
    if found is None:
        raise ToolError(f"'{program}' is not installed or not on PATH",
                        hint=fix or "run `gen infra install`")
    return found


def tail(text: str | bytes | None, lines: int = 6) -> str:
    """The last `lines` non-blank lines of a program's output, joined with ' | '."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    got = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(got[-lines:])


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
    fix: str | None = None,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """Run `cmd`; `what` says what it is for ("push the base image"), used in errors."""
    argv = [os.fspath(c) for c in cmd]
    if "/" not in argv[0]:
        argv[0] = which(argv[0])
    full_env = dict(os.environ if env is None else env)
    if extra_env:
        full_env.update(extra_env)
    try:
        result = subprocess.run(
            argv, cwd=cwd, env=full_env, input=input, timeout=timeout, check=False,
            stdout=stdout if stdout is not None else (subprocess.PIPE if capture else None),
            stderr=subprocess.PIPE if capture else None,
            text=text if input is None else False,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"cannot {what}: '{argv[0]}' not found", hint=fix
                        or "run `gen infra install`") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"cannot {what}: {Path(argv[0]).name} timed out after {timeout:.0f}s",
                        hint=fix) from exc
    if check and result.returncode != 0:
        detail = tail(result.stderr) or tail(result.stdout)
        raise ToolError(f"cannot {what}: `{Path(argv[0]).name} {' '.join(argv[1:3])}...` exited "
                        f"{result.returncode}: {detail}", hint=fix)
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

