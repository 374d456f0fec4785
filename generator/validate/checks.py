"""The static checks gen validate makes before anything runs: the test patch touches only test
files and the gold patch none, the solution is substantive and not leaked into the instruction,
and no test, solution or oracle file is in the agent image's layers."""

from __future__ import annotations

import hashlib
import math
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from generator.core.errors import InputError
from generator.core.fsutil import walk_files
from generator.image.normalize import open_layer
from generator.image.oci import Layout
from generator.render.context import patch_files
from generator.spec.model import SweTask, Task, TerminalTask

__all__ = [
    "EVAL_SCRIPT", "MIN_HASHED_SIZE", "ORACLE_DIR", "TEST_DIR", "check_image_contents",
    "heredoc_bodies", "instruction_leak", "is_test_path", "layout_ref", "patch_checks",
    "secret_files", "solution_lines",
]


TEST_DIR = "/tests"


ORACLE_DIR = "/oracle"


EVAL_SCRIPT = "/eval.sh"


MIN_HASHED_SIZE = 16  # shorter files (empty __init__.py, "1\n") match too much to mean a leak


_TEST_DIRS = {"test", "tests", "testing", "e2e", "__tests__", "spec", "specs"}


_TEST_NAME_RE = re.compile(
    r"^(test_.*\.py|.*_tests?\.py|tests?\.py|conftest\.py|.*[._-](test|spec)\.[A-Za-z0-9]+"
    r"|.*_test\.(go|rs|rb|c|cc|cpp))$")


def is_test_path(path: str) -> bool:
    """Whether a repository path is a test file (a tests/ directory or a test file name)."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    return any(p.lower() in _TEST_DIRS for p in parts[:-1]) or bool(
        _TEST_NAME_RE.match(parts[-1]))


def patch_checks(task: SweTask) -> list[str]:
    """The gold patch edits no test file; the test patch edits only test files."""
    problems: list[str] = []
    test_files = set(patch_files(task.test_patch))
    gold = patch_files(task.patch)
    touched = [p for p in gold if p in test_files or is_test_path(p)]
    if touched:
        problems.append(f"anti-cheat: the gold patch ({task.patch_file}) edits test file(s) "
                        f"{', '.join(touched)}; the fix must not change tests (move them to "
                        f"{task.test_patch_file})")
    non_test = [p for p in sorted(test_files) if not is_test_path(p)]
    if non_test:
        problems.append(f"anti-cheat: the test patch ({task.test_patch_file}) edits non-test "
                        f"file(s) {', '.join(non_test)}; it may only add or change tests")
    return problems


_TRIVIAL_LINE_RE = re.compile(
    r"^(#.*|set [-+][a-z ]+.*|cd \S+|\w+|[{}()\[\];]+|fi|done|esac|;;|else|then|exit \d+"
    r"|@@.*|(diff|index|---|\+\+\+) .*)$")


def _substantive(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for ln in lines:
        s = " ".join(ln.split())
        if len(s) >= 12 and not _TRIVIAL_LINE_RE.match(s) and s not in out:
            out.append(s)
    return out


def solution_lines(task: Task) -> list[str]:
    """The lines that make up the solution: solution.sh (terminal) or the gold patch's added
    lines (swe), without blank lines, comments and shell boilerplate."""
    if isinstance(task, SweTask):
        added = [ln[1:] for ln in task.patch.splitlines()
                 if ln.startswith("+") and not ln.startswith("+++")]
        return _substantive(added)
    text = (task.path / task.solution).read_text(encoding="utf-8", errors="replace")
    return _substantive(ln for ln in text.splitlines() if not ln.startswith("#!"))


def instruction_leak(instruction: str, lines: Sequence[str]) -> list[str]:
    """The solution lines found in the instruction when they are at least half of them."""
    if not lines:
        return []
    text = " ".join(instruction.split())
    hits = [ln for ln in lines if ln in text]
    return hits if len(hits) >= max(1, math.ceil(len(lines) / 2)) else []


_HEREDOC_RE = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")


def heredoc_bodies(script: str) -> list[str]:
    """The here-documents of a shell script (what a solution writes into files)."""
    lines = script.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _HEREDOC_RE.search(lines[i])
        i += 1
        if not m:
            continue
        strip_tabs, delim = m.group(1) == "-", m.group(3)
        body: list[str] = []
        while i < len(lines):
            ln = lines[i].lstrip("\t") if strip_tabs else lines[i]
            i += 1
            if ln == delim:
                break
            body.append(ln)
        out.append("".join(b + "\n" for b in body))
    return out


@dataclass(frozen=True)
class _Secret:
    label: str  # what it is, e.g. "tests/test_outputs.py"
    sha256: str
    size: int


def secret_files(task: Task, task_dir: Path) -> list[_Secret]:
    """What the agent image must not contain: tests, test runner, solution (and for swe the
    patches and eval script), by content; minus the task's own `files` (given to the agent)."""
    found: dict[str, _Secret] = {}
    # what the task deliberately gives the agent (files: copied into the image) is no secret,
    # even when a test uses the same bytes as a fixture
    given = {hashlib.sha256(f.read_bytes()).hexdigest()
             for f in (walk_files(task_dir / "files") if (task_dir / "files").is_dir() else [])}

    def add(label: str, data: bytes) -> None:
        if len(data) < MIN_HASHED_SIZE:
            return
        h = hashlib.sha256(data).hexdigest()
        if h not in given:
            found.setdefault(h, _Secret(label, h, len(data)))

    tests = task_dir / "tests"
    if tests.is_dir():
        for f in walk_files(tests):
            add(f"tests/{f.relative_to(tests).as_posix()}", f.read_bytes())
    for name in ("run-tests.sh", "solution.sh", "eval.sh"):
        if (task_dir / name).is_file():
            add(name, (task_dir / name).read_bytes())
    if isinstance(task, TerminalTask):
        src = task.path / task.solution
        if src.is_file():
            text = src.read_text(encoding="utf-8", errors="replace")
            add(f"solution ({task.solution})", src.read_bytes())
            for body in heredoc_bodies(text):
                add("a file written by solution.sh (its here-document)", body.encode())
    else:
        add(f"gold patch ({task.patch_file})", task.patch.encode())
        add(f"test patch ({task.test_patch_file})", task.test_patch.encode())
    return sorted(found.values(), key=lambda s: s.label)


def _member_path(name: str) -> str:
    p = name[2:] if name.startswith("./") else name
    return p.lstrip("/")


def layout_ref(layout_dir: Path, digest: str) -> str:
    """The ref name of the image with manifest `digest` in an OCI layout."""
    layout = Layout.open(layout_dir)
    for name in sorted(layout.refs()):
        if layout.resolve(name).digest == digest:
            return name
    raise InputError(f"the OCI layout {layout_dir} holds no image {digest}",
                     file=str(layout_dir / "index.json"), hint="run `gen build` again")


def check_image_contents(layout_dir: Path, ref_name: str | None, secrets: Sequence[_Secret]
                         ) -> list[str]:
    """Every layer of the image: no path under /tests or /oracle, no file whose sha256 is one
    of the secrets'. Returns one problem line per finding."""
    layout = Layout.open(layout_dir)
    image = layout.image(ref_name)
    by_size: dict[int, dict[str, _Secret]] = {}
    for s in secrets:
        by_size.setdefault(s.size, {})[s.sha256] = s
    problems: list[str] = []
    for i, desc in enumerate(image.layers):
        with open_layer(layout.blob_path(desc.digest), desc.media_type) as fh, \
                tarfile.open(fileobj=fh, mode="r|") as tar:
            for m in tar:
                path = _member_path(m.name)
                base = PurePosixPath(path).name
                if base.startswith(".wh."):
                    continue
                top = path.split("/", 1)[0]
                if top in (TEST_DIR.strip("/"), ORACLE_DIR.strip("/")) and (m.isfile() or (
                        m.isdir() and path.rstrip("/") != top)):
                    problems.append(f"anti-cheat: the agent image contains /{path} (layer {i + 1}"
                                    f"); tests and the solution are copied in only at test time")
                    continue
                if not m.isfile() or m.size not in by_size:
                    continue
                f = tar.extractfile(m)
                if f is None:
                    continue
                h = hashlib.sha256(f.read()).hexdigest()
                hit = by_size[m.size].get(h)
                if hit is not None:
                    problems.append(f"anti-cheat: the agent image contains /{path} (layer "
                                    f"{i + 1}), identical to {hit.label} (sha256 {h[:12]}); the "
                                    "image must not hold tests or the solution")
    return problems
