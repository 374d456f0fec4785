"""Hermeticity lint for what `gen render` emits (including user-overridden templates).

Each finding is a `LintError` (exit 2) naming the rendered file, its line, the task and the fix.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator

from generator.core.errors import LintError
from generator.lock.lockfiles import DIGEST_REF_RE

__all__ = ["dockerfile_instructions", "lint_dockerfile", "lint_script"]

_PIPE_TO_SHELL_RE = re.compile(
    r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b", re.IGNORECASE)
_URL_RE = re.compile(r"^(https?|ftp|git)://|^git@", re.IGNORECASE)
_SUBST_RE = re.compile(r"\$\([^()]*\)|`[^`]*`")
_TEST_SOURCES = re.compile(r"^(\./)?(tests(/|$)|solution(\.sh|\.yaml|/|$)|run-tests\.sh$)")


def dockerfile_instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments) with continuation lines joined."""
    buf: list[str] | None = None
    start = 0
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()
        if buf is None:
            if not line:
                continue
            stripped = line.lstrip()
            if stripped[0] == "#":
                continue
            if line[-1] == "\\":
                buf, start = [line[:-1]], n
                continue
            instr, _, args = stripped.partition(" ")
            yield n, instr.upper(), args.strip()
            continue
        if line.lstrip().startswith("#"):
            continue  # comment lines inside a continuation are dropped by Docker too
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = None
        instr, _, args = joined.partition(" ")
        yield start, instr.upper(), args.strip()
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        instr, _, args = joined.partition(" ")
        yield start, instr.upper(), args.strip()


def _fail(where: str, line: int, task_id: str, message: str, fix: str) -> LintError:
    return LintError(f"task '{task_id}': {message}", file=where.split(" ", 1)[0], line=line,
                     hint=fix + (f" [{where.split(' ', 1)[1]}]" if " " in where else ""))


_WORD_RE = re.compile(r"""(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s;&|'"\\])+|[;&|]+""")


def _unquote(word: str) -> str:
    if "'" in word or '"' in word or "\\" in word:
        try:
            parts = shlex.split(word)
        except ValueError:
            return word
        return parts[0] if len(parts) == 1 else word
    return word


@functools.lru_cache(maxsize=4096)
def _shell_words(command: str) -> tuple[tuple[str, ...], ...]:
    """Split a shell command line into simple commands (on ; && || |), as word lists."""
    cleaned = _SUBST_RE.sub(" $SUBST ", command)
    commands: list[list[str]] = [[]]
    for tok in _WORD_RE.findall(cleaned):
        if set(tok) <= set(";&|"):
            commands.append([])
        else:
            commands[-1].append(_unquote(tok))
    return tuple(tuple(c) for c in commands if c)


def _strip_env_prefix(words: tuple[str, ...] | list[str]) -> list[str]:
    i = 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        i += 1
    if i < len(words) and words[i] in ("sudo", "env", "exec"):
        return _strip_env_prefix(words[i + 1:])
    return list(words[i:])


@functools.lru_cache(maxsize=4096)
def _check_command(words: tuple[str, ...]) -> tuple[str, str] | None:
    """(problem, fix) for a non-hermetic simple command, else None."""
    argv = _strip_env_prefix(words)
    if not argv:
        return None
    prog = argv[0].rsplit("/", 1)[-1]
    args = argv[1:]
    if prog in ("apt-get", "apt", "aptitude") and "install" in args:
        pkgs = args[args.index("install") + 1:]
        for p in pkgs:
            if p.startswith("-") or p.startswith("$") or p.endswith(".deb") or "=" in p:
                continue
            return (f"'{prog} install {p}' installs a package without an exact version",
                    "install from the locked .debs (list the package in environment.apt)")
    pip_args: list[str] | None = None
    if re.fullmatch(r"pip[0-9.]*", prog) and args[:1] == ["install"]:
        pip_args = args[1:]
    elif re.fullmatch(r"python[0-9.]*", prog) and args[:3] == ["-m", "pip", "install"]:
        pip_args = args[3:]
    elif prog == "uv" and args[:2] == ["pip", "install"]:
        pip_args = args[2:]
    if pip_args is not None:
        offline_local = "--no-index" in pip_args and "--no-deps" in pip_args
        if "--require-hashes" not in pip_args and not offline_local:
            return ("'pip install' without --require-hashes",
                    "list the requirement in environment.python; gen locks it with hashes")
    return None


_SYNTAX_RE = re.compile(r"^#\s*syntax\s*=", re.IGNORECASE)


def lint_dockerfile(text: str, *, where: str, task_id: str) -> None:
    stages: set[str] = set()
    for n, raw in enumerate(text.split("\n"), 1):
        if _SYNTAX_RE.match(raw):
            raise _fail(where, n, task_id, "a '# syntax=' directive makes BuildKit pull a "
                        "frontend image from the network", "remove the syntax line")
        if raw.strip() and not raw.startswith("#"):
            break
    for line, instr, args in dockerfile_instructions(text):
        if instr == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            if image.lower() in stages or image == "scratch":
                continue
            if image.split("@")[0].endswith(":latest"):
                raise _fail(where, line, task_id, f"FROM {image} uses the moving 'latest' tag",
                            "pin the base image by digest (gen lock writes it)")
            if not DIGEST_REF_RE.search(image):
                raise _fail(where, line, task_id, f"FROM {image} has no @sha256: digest",
                            "use {{ image.pinned }} in the template; gen lock pins its digest")
        elif instr in _CHECKED:
            found = _instruction_finding(instr, args)
            if found:
                raise _fail(where, line, task_id, found[0], found[1])


_CHECKED = frozenset(("ADD", "COPY", "RUN"))


@functools.lru_cache(maxsize=8192)
def _instruction_finding(instr: str, args: str) -> tuple[str, str] | None:
    """(problem, fix) for a non-hermetic ADD, COPY or RUN, else None: a pure function of the
    instruction, so the lines every task's Dockerfile shares are checked once per process."""
    if instr in ("ADD", "COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        if instr == "ADD" and any(_URL_RE.match(w) for w in words[:-1]):
            return ("ADD <url> downloads an unpinned file",
                    "lock the artifact and COPY it from the build context")
        if any("--from" in w for w in args.split()):
            return None
        for src in words[:-1]:
            if _TEST_SOURCES.match(src):
                return (f"{instr} {src} would put tests or the solution into the agent image",
                        "tests and solution are copied in only at test time")
        return None
    if _PIPE_TO_SHELL_RE.search(args):
        return ("'curl|wget ... | sh' runs an unpinned script",
                "lock what the script installs instead")
    for simple in _shell_words(args):
        found = _check_command(simple)
        if found:
            return found
    return None


_HEREDOC_RE = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


def lint_script(text: str, *, where: str, task_id: str) -> None:
    """Shell scripts run in the container: no piped installers, no unpinned installs.

    Heredoc bodies (e.g. an embedded patch) are data, not commands, and are skipped.
    """
    end: str | None = None
    for n, line in enumerate(text.split("\n"), 1):
        if end is not None:
            if line.strip() == end:
                end = None
            continue
        end, found = _script_line(line)
        if found:
            raise _fail(where, n, task_id, found[0], found[1])


@functools.lru_cache(maxsize=8192)
def _script_line(line: str) -> tuple[str | None, tuple[str, str] | None]:
    """(the heredoc delimiter the line opens, (problem, fix)) for one command line."""
    if line.lstrip().startswith("#"):
        return None, None
    heredoc = _HEREDOC_RE.search(line)
    end = heredoc.group(2) if heredoc else None
    if _PIPE_TO_SHELL_RE.search(line):
        return end, ("'curl|wget ... | sh' runs an unpinned script",
                     "preinstall the tool through the locked environment")
    for words in _shell_words(line.split(" #", 1)[0]):
        found = _check_command(words)
        if found:
            return end, found
    return end, None
