"""`gen validate`: prove every task's test set is sound, the same every run.

For each task, in containers of its built image (`images.json`, by digest) with the network
off, a memory limit, the task's test timeout and fixed randomness:

- terminal tasks: state `unsolved` (the agent image as built) must NOT be resolved (some test
  fails), state `solved` (after `solution.sh`) must be resolved (every test passes);
- swe tasks: state `test_patch` (SWE-bench's eval script on the base commit) must have every
  FAIL_TO_PASS test failing and every PASS_TO_PASS test passing; state `gold` (gold patch, then
  the eval script) must have all of them passing. `derive=True` writes FAIL_TO_PASS /
  PASS_TO_PASS into the spec from what was observed (SWE-bench's rule), refusing an empty
  FAIL_TO_PASS.

Each state runs `runs` times in fresh containers; a test whose status differs between runs is a
flake and fails the task. Static anti-cheat checks run first: the agent image holds no file of
tests/ or of the solution (paths and content hashes, every layer), the instruction does not
contain the solution, the gold patch touches no test file, and the test patch only test files.
Tests and the solution enter a container only at test time (`cp`), as Terminal-Bench does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from generator.core import proc, state, yamltext
from generator.core.errors import InputError, ToolError
from generator.core.fsutil import atomic_write, walk_files
from generator.image.images import BuiltImage, load_images
from generator.image.normalize import open_layer
from generator.image.oci import Layout
from generator.render.context import patch_files
from generator.spec.model import SPEC_FILE, SweTask, Task, TerminalTask
from generator.spec.project import load_project
from generator.validate.runner import Container, ContainerSpec, Runner, get_runner, remove_all
from generator.validate.testlog import (
    parse_swe_log,
    parse_tb_pytest,
    swe_failed,
    swe_maintained,
    swe_passed,
    tb_passed,
)

__all__ = [
    "REPORT_FILE",
    "Options",
    "TaskVerdict",
    "ValidateResult",
    "check_image_contents",
    "derive_lists",
    "instruction_leak",
    "is_test_path",
    "replace_spec_lists",
    "validate_project",
]

REPORT_FILE = state.VALIDATE_REPORT
TEST_DIR = "/tests"
ORACLE_DIR = "/oracle"
EVAL_SCRIPT = "/eval.sh"
DEFAULT_SEED = 0
MIN_HASHED_SIZE = 16  # shorter files (empty __init__.py, "1\n") match too much to mean a leak
MISSING = "MISSING"

NETWORK_ERRORS = (
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "Could not resolve host",
    "getaddrinfo failed",
    "Name does not resolve",
)


@dataclass(frozen=True)
class Options:
    runs: int = 3
    jobs: int = 1
    seed: int = DEFAULT_SEED
    derive: bool = False
    engine: str = "auto"
    only: Sequence[str] | None = None


# --------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Running states
# --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    state: str
    index: int  # 1-based
    statuses: dict[str, str] | None  # None: no parsable results
    exit_code: int | None
    seconds: float
    timed_out: str | None = None  # the step that was killed at its limit
    solution_exit: int | None = None
    errors: list[str] = field(default_factory=list)  # what went wrong outside the tests
    output_tail: str = ""
    network_error: str | None = None
    # swe tasks: run-tests.sh (Terminal-Bench's entry point) after eval.sh, pytest -rA statuses
    tb_statuses: dict[str, str] | None = None
    tb_ran: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.index, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
            "timed_out": self.timed_out, "solution_exit_code": self.solution_exit,
            "errors": list(self.errors), "tests_parsed": None if self.statuses is None
            else len(self.statuses), "network_error": self.network_error,
        }
        if self.tb_ran:
            out["run_tests_sh"] = self.tb_statuses
        return out


@dataclass(frozen=True)
class _State:
    name: str
    description: str
    with_solution: bool


TERMINAL_STATES = (
    _State("unsolved", "the agent image as built, tests copied in", False),
    _State("solved", "after solution.sh, tests copied in", True),
)
SWE_STATES = (
    _State("test_patch", "the base commit with the test patch (eval.sh)", False),
    _State("gold", "the gold patch applied, then eval.sh", True),
)


def _tail(text: str, n: int = 15) -> str:
    """The end of a test run's output, as it printed it (warnings kept, one line each)."""
    return proc.tail(text, n, sep="\n", warnings=True)


def _network_error(text: str) -> str | None:
    return next((sig for sig in NETWORK_ERRORS if sig in text), None)


def _dir_files(root: Path, dest: str) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if root.is_dir():
        for f in walk_files(root):
            mode = 0o755 if f.stat().st_mode & 0o111 else 0o644
            out[f"{dest}/{f.relative_to(root).as_posix()}"] = (f.read_bytes(), mode)
    return out


class _TaskRunner:
    """Runs one task's states in fresh containers through a Runner."""

    def __init__(self, task: Task, task_dir: Path, image: str, runner: Runner, *,
                 env: Mapping[str, str], labels: Mapping[str, str]) -> None:
        self.task = task
        self.task_dir = task_dir
        self.image = image
        self.runner = runner
        self.env = dict(env)
        self.labels = dict(labels)
        self.swe_run_tests = True  # off when deriving: run-tests.sh lists the old tests

    def _solution_files(self) -> dict[str, tuple[bytes, int]]:
        return {f"{ORACLE_DIR}/solution.sh": ((self.task_dir / "solution.sh").read_bytes(),
                                              0o755)}

    def _test_files(self) -> tuple[dict[str, tuple[bytes, int]], str]:
        if isinstance(self.task, TerminalTask):
            files = _dir_files(self.task_dir / "tests", TEST_DIR)
            files[f"{TEST_DIR}/run-tests.sh"] = ((self.task_dir / "run-tests.sh").read_bytes(),
                                                 0o755)
            return files, f"bash {TEST_DIR}/run-tests.sh"
        files = _dir_files(self.task_dir / "tests", TEST_DIR)
        files[EVAL_SCRIPT] = ((self.task_dir / "eval.sh").read_bytes(), 0o755)
        return files, f"bash {EVAL_SCRIPT}"

    def _parse(self, output: str) -> dict[str, str] | None:
        if isinstance(self.task, TerminalTask):
            return parse_tb_pytest(output)
        return parse_swe_log(output, self.task.log_parser)

    def run(self, state: _State, index: int) -> RunResult:
        t = self.task
        test_sec = float(t.timeouts.test_sec)
        agent_sec = float(t.timeouts.agent_sec)
        lifetime = test_sec + (agent_sec if state.with_solution else 0) + 300
        spec = ContainerSpec(env=self.env, memory_mb=t.resources.memory_mb,
                             cpus=t.resources.cpus, lifetime_sec=lifetime,
                             labels={**self.labels, "gen.validate.state": state.name})
        t0 = time.monotonic()
        res = RunResult(state.name, index, None, None, 0.0)
        container: Container = self.runner.start(self.image, spec)
        try:
            if state.with_solution:
                container.put_files(self._solution_files())
                sol = container.exec(f"bash {ORACLE_DIR}/solution.sh", timeout=agent_sec)
                res.solution_exit = sol.exit_code
                if sol.timed_out:
                    res.timed_out = "solution.sh"
                    res.errors.append(f"solution.sh ran past its limit ({agent_sec:g}s, the "
                                      "task's agent timeout); the container was killed")
                    res.output_tail = _tail(sol.output)
                    return res
                if sol.exit_code != 0:
                    res.errors.append(f"solution.sh exited {sol.exit_code}: "
                                      f"{_tail(sol.output, 3).replace(chr(10), ' | ')}")
            files, command = self._test_files()
            container.put_files(files)
            out = container.exec(command, timeout=test_sec)
            res.exit_code = out.exit_code
            res.output_tail = _tail(out.output)
            res.network_error = _network_error(out.output)
            if out.timed_out:
                res.timed_out = "tests"
                res.errors.append(f"the tests ran past the task's test timeout ({test_sec:g}s); "
                                  "the container was killed")
            if isinstance(t, SweTask):
                head = out.output.split(">>>>> Start Test Output", 1)[0]
                if re.search(r"error: (patch failed|corrupt patch|.*: patch does not apply|"
                             r"unrecognized input|No valid patches)", head):
                    res.errors.append("the test patch does not apply to the image's repository")
            res.statuses = self._parse(out.output)
            if isinstance(t, SweTask) and self.swe_run_tests and not out.timed_out:
                # the same state through run-tests.sh, as a Terminal-Bench harness runs it
                files = {f"{TEST_DIR}/run-tests.sh": ((self.task_dir / "run-tests.sh")
                                                      .read_bytes(), 0o755)}
                container.put_files(files)
                tb = container.exec(f"bash {TEST_DIR}/run-tests.sh", timeout=test_sec)
                res.tb_ran = True
                if tb.timed_out:
                    res.timed_out = "run-tests.sh"
                    res.errors.append(f"run-tests.sh ran past the task's test timeout "
                                      f"({test_sec:g}s); the container was killed")
                else:
                    res.tb_statuses = parse_tb_pytest(tb.output)
            return res
        finally:
            container.remove()
            res.seconds = time.monotonic() - t0


# --------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------


@dataclass
class TaskVerdict:
    task: str
    kind: str
    image: str
    problems: list[str] = field(default_factory=list)
    checks: dict[str, list[str]] = field(default_factory=dict)  # check -> its problems
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    flaky: list[str] = field(default_factory=list)
    derived: dict[str, list[str]] | None = None
    spec_written: bool = False
    seconds: float = 0.0
    summary: dict[str, str] = field(default_factory=dict)  # state -> one line

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "image": self.image, "ok": self.ok,
            "problems": list(self.problems),
            "checks": {k: {"ok": not v, "problems": list(v)} for k, v in self.checks.items()},
            "states": {s: {"summary": self.summary.get(s, ""),
                           "runs": [r.to_json() for r in runs]}
                       for s, runs in self.runs.items()},
            "tests": self.tests, "flaky": list(self.flaky),
            "derived": self.derived, "spec_written": self.spec_written,
            "seconds": round(self.seconds, 3),
        }


def _runs_text(indexes: Sequence[int]) -> str:
    return ("run " if len(indexes) == 1 else "runs ") + ", ".join(str(i) for i in indexes)


def find_flakes(state: str, runs: Sequence[RunResult]) -> dict[str, str]:
    """test -> why, for tests whose status differs between the runs of one state (runs that
    produced results only; a test missing from a run's results counts as MISSING)."""
    parsed = [r for r in runs if r.statuses is not None and not r.timed_out]
    if len(parsed) < 2:
        return {}
    names: list[str] = []
    for r in parsed:
        assert r.statuses is not None
        names += [n for n in r.statuses if n not in names]
    out: dict[str, str] = {}
    for name in names:
        seen: dict[str, list[int]] = {}
        for r in parsed:
            assert r.statuses is not None
            seen.setdefault(r.statuses.get(name, MISSING), []).append(r.index)
        if len(seen) > 1:
            parts = "; ".join(f"{st} in {_runs_text(ix)}" for st, ix in seen.items())
            out[name] = f"flaky: test {name} in state '{state}': {parts}"
    return out


def _statuses(runs: Sequence[RunResult], name: str) -> list[str]:
    return [MISSING if r.statuses is None else r.statuses.get(name, MISSING) for r in runs]


def _run_errors(v: TaskVerdict, state: _State, runs: Sequence[RunResult]) -> None:
    for r in runs:
        for e in r.errors:
            v.problems.append(f"state '{state.name}' run {r.index}: {e}")


def _no_results(state: _State, r: RunResult) -> str:
    tail = r.output_tail.splitlines()[-3:]
    killed = " (137: killed, e.g. by the memory limit)" if r.exit_code == 137 else ""
    return (f"state '{state.name}' run {r.index}: no test results in the output (exit code "
            f"{r.exit_code}{killed}); last lines: {' | '.join(tail) or '(none)'}")


def _network_hint(runs: Sequence[RunResult]) -> str:
    sig = next((r.network_error for r in runs if r.network_error), None)
    if sig is None:
        return ""
    return (f" (the output shows a network error: '{sig}'; tests run with the network off and "
            "must not need it)")


def grade_terminal(v: TaskVerdict, runs: Mapping[str, list[RunResult]]) -> None:
    unsolved, solved = TERMINAL_STATES
    flakes: dict[str, str] = {}
    for st in TERMINAL_STATES:
        _run_errors(v, st, [r for r in runs[st.name] if r.timed_out])
        flakes.update({k: m for k, m in find_flakes(st.name, runs[st.name]).items()
                       if k not in flakes})
    v.flaky = sorted(flakes)
    v.problems += [flakes[k] for k in v.flaky]
    # unsolved: the tests must detect the missing fix
    for r in runs[unsolved.name]:
        if r.timed_out or r.statuses is None or not r.statuses:
            continue
        if all(tb_passed(s) for s in r.statuses.values()) and not flakes:
            v.problems.append(
                f"state '{unsolved.name}' run {r.index}: the tests already pass without the "
                f"fix (all {len(r.statuses)} tests passed: expected at least one to fail)")
            break
    # solved: every test must pass
    for r in runs[solved.name]:
        if r.timed_out:
            continue
        if r.statuses is None or not r.statuses:
            v.problems.append(_no_results(solved, r) + _network_hint([r]))
            continue
        for e in r.errors:
            v.problems.append(f"state '{solved.name}' run {r.index}: {e}")
    bad: dict[str, list[int]] = {}
    for r in runs[solved.name]:
        for name, status in (r.statuses or {}).items():
            if not tb_passed(status) and name not in flakes:
                bad.setdefault(f"{name}\0{status}", []).append(r.index)
    for key, idx in bad.items():
        name, status = key.split("\0")
        v.problems.append(f"state '{solved.name}' {_runs_text(idx)}: test {name} fails even "
                          f"with the fix: expected PASSED, observed {status}"
                          + _network_hint(runs[solved.name]))
    # per-test table
    names: list[str] = []
    for st in TERMINAL_STATES:
        for r in runs[st.name]:
            names += [n for n in (r.statuses or {}) if n not in names]
    for name in names:
        before = _statuses(runs[unsolved.name], name)
        after = _statuses(runs[solved.name], name)
        role = ("fail_to_pass" if all(not tb_passed(s) for s in before)
                and all(tb_passed(s) for s in after) else
                "pass_to_pass" if all(tb_passed(s) for s in before + after) else "other")
        v.tests[name] = {"role": role, "expected": {unsolved.name: "any", solved.name: "pass"},
                         "observed": {unsolved.name: before, solved.name: after},
                         "flaky": name in flakes,
                         "ok": name not in flakes and all(tb_passed(s) for s in after)}
    for st in TERMINAL_STATES:
        v.summary[st.name] = _state_summary(runs[st.name], tb_passed)


def _state_summary(runs: Sequence[RunResult], passed: Callable[[str | None], bool]) -> str:
    parts = []
    for r in runs:
        if r.timed_out:
            parts.append("timeout")
        elif r.statuses is None:
            parts.append("no results")
        else:
            n_pass = sum(1 for s in r.statuses.values() if passed(s))
            parts.append(f"{n_pass}/{len(r.statuses)} pass")
    return ", ".join(parts)


def _grade_run_tests(v: TaskVerdict, runs: Mapping[str, list[RunResult]]) -> None:
    """swe tasks through run-tests.sh (what Terminal-Bench runs): not resolved with only the
    test patch, resolved (every listed test passes) with the gold patch."""
    before_state, gold_state = SWE_STATES
    for r in runs[before_state.name]:
        if r.tb_ran and r.tb_statuses and all(tb_passed(s) for s in r.tb_statuses.values()):
            v.problems.append(f"state '{before_state.name}' run {r.index}: run-tests.sh (the "
                              "Terminal-Bench entry point) passes without the fix: all "
                              f"{len(r.tb_statuses)} tests passed")
    for r in runs[gold_state.name]:
        if not r.tb_ran or r.timed_out:
            continue
        if not r.tb_statuses:
            v.problems.append(f"state '{gold_state.name}' run {r.index}: run-tests.sh (the "
                              "Terminal-Bench entry point) printed no pytest summary")
            continue
        bad = sorted(n for n, s in r.tb_statuses.items() if not tb_passed(s))
        if bad:
            v.problems.append(f"state '{gold_state.name}' run {r.index}: run-tests.sh (the "
                              f"Terminal-Bench entry point): test {bad[0]} expected PASSED, "
                              f"observed {r.tb_statuses[bad[0]]}"
                              + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))


def derive_lists(before: Mapping[str, str], after: Mapping[str, str]
                 ) -> tuple[list[str], list[str]]:
    """SWE-bench's rule: FAIL_TO_PASS = fails (or is missing) with only the test patch and
    passes with the gold patch; PASS_TO_PASS = passes in both. In the gold log's order."""
    f2p = [t for t, s in after.items() if swe_passed(s) and swe_failed(before.get(t))]
    p2p = [t for t, s in after.items() if swe_passed(s) and swe_passed(before.get(t))]
    return f2p, p2p


def grade_swe(v: TaskVerdict, runs: Mapping[str, list[RunResult]], *,
              f2p: Sequence[str], p2p: Sequence[str]) -> None:
    """Check the declared (or derived) FAIL_TO_PASS / PASS_TO_PASS against what was observed."""
    before_state, gold_state = SWE_STATES
    flakes: dict[str, str] = {}
    for st in SWE_STATES:
        _run_errors(v, st, runs[st.name])
        flakes.update({k: m for k, m in find_flakes(st.name, runs[st.name]).items()
                       if k not in flakes})
    v.flaky = sorted(flakes)
    v.problems += [flakes[k] for k in v.flaky]
    if not f2p:
        v.problems.append("FAIL_TO_PASS is empty: no test shows the fix works (fix: list the "
                          "tests, or run `gen validate --derive`)")
    expect = {
        before_state.name: [(t, "fail", swe_failed) for t in f2p]
        + [(t, "pass", swe_maintained) for t in p2p],
        gold_state.name: [(t, "pass", swe_passed) for t in f2p]
        + [(t, "pass", swe_maintained) for t in p2p],
    }
    for st in SWE_STATES:
        done = [r for r in runs[st.name] if not r.timed_out]
        for r in done:
            if r.statuses is not None and not r.statuses:
                v.problems.append(_no_results(st, r) + _network_hint([r]))
        for name, want, ok in expect[st.name]:
            if name in flakes:
                continue
            wrong: dict[str, list[int]] = {}
            for r in done:
                got = (r.statuses or {}).get(name)
                if not ok(got):
                    wrong.setdefault(got or MISSING, []).append(r.index)
            for got, idx in wrong.items():
                which = "FAIL_TO_PASS" if name in f2p else "PASS_TO_PASS"
                why = ""
                if st is before_state and which == "FAIL_TO_PASS":
                    why = " (the test passes without the fix)"
                elif st is gold_state and which == "FAIL_TO_PASS":
                    why = " (the test fails even with the fix)" + _network_hint(done)
                elif which == "PASS_TO_PASS":
                    why = _network_hint(done)
                v.problems.append(f"state '{st.name}' {_runs_text(idx)}: {which} test {name}: "
                                  f"expected {'FAILED' if want == 'fail' else 'PASSED'}, "
                                  f"observed {got}{why}")
    _grade_run_tests(v, runs)
    for name in [*f2p, *p2p]:
        before = _statuses(runs[before_state.name], name)
        after = _statuses(runs[gold_state.name], name)
        role = "FAIL_TO_PASS" if name in f2p else "PASS_TO_PASS"
        ok_b = all((swe_failed if role == "FAIL_TO_PASS" else swe_maintained)(
            None if s == MISSING else s) for s in before)
        ok_a = all((swe_passed if role == "FAIL_TO_PASS" else swe_maintained)(
            None if s == MISSING else s) for s in after)
        v.tests[name] = {"role": role,
                         "expected": {before_state.name: "fail" if role == "FAIL_TO_PASS"
                                      else "pass", gold_state.name: "pass"},
                         "observed": {before_state.name: before, gold_state.name: after},
                         "flaky": name in flakes, "ok": ok_b and ok_a and name not in flakes}
    for st in SWE_STATES:
        v.summary[st.name] = _state_summary(runs[st.name], swe_passed)


# --------------------------------------------------------------------------------------
# Writing derived lists into the spec
# --------------------------------------------------------------------------------------


def _top_key_nodes(text: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(node, yaml.MappingNode):
        raise ValueError("the spec is not a mapping")
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def replace_spec_lists(text: str, lists: Mapping[str, Sequence[str]]) -> str:
    """`text` with only the given top-level list values replaced (block style, the existing
    indentation); every other byte is kept. A missing key is appended at the end."""
    for key, items in lists.items():
        nodes = _top_key_nodes(text)
        rendered = [yamltext.item(i) for i in items]
        if key not in nodes:
            block = f"{key}: []\n" if not items else \
                f"{key}:\n" + "".join(f"  - {r}\n" for r in rendered)
            text = (text if text.endswith("\n") or not text else text + "\n") + block
            continue
        knode, vnode = nodes[key]
        colon = text.index(":", knode.end_mark.index)
        if isinstance(vnode, yaml.SequenceNode) and vnode.value:
            end = vnode.value[-1].end_mark.index
            first = vnode.value[0].start_mark
            line_start = text.rfind("\n", 0, first.index) + 1
            dash = text.rfind("-", line_start, first.index)
            indent = " " * (dash - line_start) if not vnode.flow_style and dash >= 0 else "  "
            if vnode.flow_style:
                end = vnode.end_mark.index
        else:
            end = vnode.end_mark.index
            indent = "  "
        new = "".join(f"\n{indent}- {r}" for r in rendered) if items else " []"
        text = text[:colon + 1] + new + text[end:]
    return text


def write_derived(task: SweTask, f2p: Sequence[str], p2p: Sequence[str]) -> bool:
    """Write FAIL_TO_PASS / PASS_TO_PASS into the task's spec (atomically); False when the spec
    already says exactly that."""
    path = task.path / SPEC_FILE
    old = path.read_text(encoding="utf-8")
    new = replace_spec_lists(old, {"FAIL_TO_PASS": list(f2p), "PASS_TO_PASS": list(p2p)})
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    before, after = yaml.load(old, Loader=loader), yaml.load(new, Loader=loader)
    assert after.get("FAIL_TO_PASS") == list(f2p) and (after.get("PASS_TO_PASS") or []
                                                          ) == list(p2p), "derive edit failed"
    for k in ("FAIL_TO_PASS", "PASS_TO_PASS"):
        before.pop(k, None)
        after.pop(k, None)
    assert before == after, "derive edit changed other fields"
    if new == old:
        return False
    atomic_write(path, new.encode("utf-8"), mode=path.stat().st_mode & 0o777)
    return True


# --------------------------------------------------------------------------------------
# The whole project
# --------------------------------------------------------------------------------------


@dataclass
class ValidateResult:
    engine: str
    runs: int
    seed: int
    session: str
    env: dict[str, str]
    verdicts: list[TaskVerdict]
    seconds: float
    derive: bool
    leftovers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not self.leftovers

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "engine": self.engine, "runs": self.runs, "seed": self.seed,
            "env": dict(sorted(self.env.items())), "network": "none", "session": self.session,
            "derive": self.derive, "seconds": round(self.seconds, 3),
            "leftover_containers": list(self.leftovers),
            "tasks": {v.task: v.to_json() for v in self.verdicts},
            "summary": {"tasks": len(self.verdicts),
                        "valid": sum(1 for v in self.verdicts if v.ok),
                        "failed": sum(1 for v in self.verdicts if not v.ok),
                        "flaky": sorted(v.task for v in self.verdicts if v.flaky)},
        }


def test_env(seed: int, epoch: int) -> dict[str, str]:
    """The environment every test step sees: fixed randomness, clock zone and locale."""
    return {"PYTHONHASHSEED": "0", "GEN_SEED": str(seed), "TEST_SEED": str(seed),
            "TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TEST_DIR": TEST_DIR,
            "SOURCE_DATE_EPOCH": str(epoch), "PYTHONDONTWRITEBYTECODE": "1"}


def _check_rendered(task: Task, task_dir: Path) -> None:
    need = ["run-tests.sh", "solution.sh"] + (["eval.sh"] if isinstance(task, SweTask) else [])
    for name in need:
        if not (task_dir / name).is_file():
            raise InputError(f"task '{task.id}' is not rendered: dataset/{task.id}/{name} is "
                             "missing", file=f"dataset/{task.id}/{name}", hint="run `gen render`")


def _validate_task(project: Path, task: Task, image: BuiltImage, runner: Runner, opts: Options,
                   env: Mapping[str, str], labels: Mapping[str, str],
                   advance: Callable[[int], None], stop: threading.Event) -> TaskVerdict:
    t0 = time.monotonic()
    task_dir = project / "dataset" / task.id
    v = TaskVerdict(task.id, task.kind, image.ref)
    # static anti-cheat checks
    layout_dir: Path | None = project / image.layout if image.layout else None
    ref_name = ""
    if layout_dir is not None and layout_dir.is_dir():
        try:
            ref_name = layout_ref(layout_dir, image.digest)
            found = check_image_contents(layout_dir, ref_name, secret_files(task, task_dir))
        except (OSError, KeyError, ValueError, tarfile.TarError, InputError) as exc:
            msg = exc.one_line() if isinstance(exc, InputError) else str(exc)
            found = [f"anti-cheat: cannot read the image layout {image.layout}: {msg}"]
            layout_dir = None
    else:
        layout_dir = None
        found = [f"anti-cheat: cannot check the image's contents: its OCI layout "
                 f"{image.layout} is missing (fix: run `gen build`)"]
    v.checks["image_has_no_tests_or_solution"] = found
    leak = instruction_leak(task.instruction, solution_lines(task))
    what = "instruction" if isinstance(task, TerminalTask) else "problem statement"
    v.checks["instruction_has_no_solution"] = [
        f"anti-cheat: the {what} contains the solution ({len(leak)} of its lines, e.g. "
        f"'{leak[0][:80]}')"] if leak else []
    if isinstance(task, SweTask):
        v.checks["patches_split_tests_from_fix"] = patch_checks(task)
    for found_problems in v.checks.values():
        v.problems += found_problems
    # dynamic: every state, `runs` times
    states = TERMINAL_STATES if isinstance(task, TerminalTask) else SWE_STATES
    done = 0
    try:
        local = runner.ensure_image(image.ref, layout_dir, ref_name)
        tr = _TaskRunner(task, task_dir, local, runner, env=env,
                         labels={**labels, "gen.validate.task": task.id})
        tr.swe_run_tests = not opts.derive
        for st in states:
            v.runs[st.name] = []
            for i in range(1, opts.runs + 1):
                if stop.is_set():
                    raise ToolError("interrupted")
                v.runs[st.name].append(tr.run(st, i))
                done += 1
                advance(1)
    except ToolError as exc:
        advance(len(states) * opts.runs - done)
        v.problems.append(f"engine: {exc.one_line()}")
        v.seconds = time.monotonic() - t0
        return v
    if isinstance(task, TerminalTask):
        grade_terminal(v, v.runs)
    else:
        f2p, p2p = list(task.fail_to_pass), list(task.pass_to_pass)
        if opts.derive:
            f2p, p2p = _derive(v, task, v.runs) or (f2p, p2p)
        grade_swe(v, v.runs, f2p=f2p, p2p=p2p)
    v.seconds = time.monotonic() - t0
    return v


def _derive(v: TaskVerdict, task: SweTask, runs: Mapping[str, list[RunResult]]
            ) -> tuple[list[str], list[str]] | None:
    before_state, gold_state = SWE_STATES
    reasons: list[str] = []
    flakes = {**find_flakes(before_state.name, runs[before_state.name]),
              **find_flakes(gold_state.name, runs[gold_state.name])}
    if flakes:
        reasons.append(f"{len(flakes)} flaky test(s) (first: {sorted(flakes)[0]})")
    usable = {s.name: [r for r in runs[s.name] if r.statuses and not r.timed_out and not r.errors]
              for s in SWE_STATES}
    if not usable[before_state.name] or not usable[gold_state.name]:
        reasons.append("a state produced no test results")
    if reasons:
        v.problems.append("derive refused: " + "; ".join(reasons))
        return None
    before = usable[before_state.name][0].statuses or {}
    after = usable[gold_state.name][0].statuses or {}
    f2p, p2p = derive_lists(before, after)
    v.derived = {"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p}
    if not f2p:
        v.problems.append("derive refused: no test fails with only the test patch and passes "
                          "with the gold patch (derived FAIL_TO_PASS is empty)")
        return None
    v.spec_written = write_derived(task, f2p, p2p)
    return f2p, p2p


def validate_project(project: Path, opts: Options = Options(), *,
                     runner: Runner | None = None,
                     progress: Callable[[int], None] | None = None) -> ValidateResult:
    """Validate every task (or `opts.only`); writes `.gen/validate/report.json`."""
    if opts.runs < 1:
        raise InputError("--runs must be at least 1", field="--runs", hint="use --runs 3")
    project = project.resolve()
    loaded = load_project(project, only=opts.only)
    images = load_images(project)
    missing = [t.id for t in loaded.tasks if t.id not in images]
    if missing:
        raise InputError(f"no built image for task(s) {', '.join(missing)} in "
                         ".gen/build/images.json", file=".gen/build/images.json",
                         hint="run `gen build` first")
    for t in loaded.tasks:
        _check_rendered(t, project / "dataset" / t.id)
    runner = runner or get_runner(opts.engine)
    problem = runner.available()
    if problem is not None:
        raise ToolError(f"engine {runner.name} is not usable: {problem}")
    engine = runner.version()
    env = test_env(opts.seed, loaded.config.source_date_epoch)
    session = uuid.uuid4().hex[:16]
    labels = {"gen.validate": "1", "gen.validate.session": session}
    lock = threading.Lock()

    def advance(n: int) -> None:
        if progress is not None:
            with lock:
                progress(n)

    t0 = time.monotonic()
    verdicts: list[TaskVerdict] = []
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, opts.jobs))
    try:
        futures = [pool.submit(_validate_task, project, t, images[t.id], runner, opts, env,
                               labels, advance, stop) for t in loaded.tasks]
        verdicts = [f.result() for f in futures]
    except BaseException:
        # interrupted (or a bug): start nothing new, and kill what runs so the workers return
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        remove_all()
        raise
    finally:
        pool.shutdown(wait=True)
        remove_all()
    leftovers = runner.containers(f"gen.validate.session={session}")
    result = ValidateResult(engine=engine, runs=opts.runs, seed=opts.seed, session=session,
                            env=env, verdicts=verdicts, seconds=time.monotonic() - t0,
                            derive=opts.derive, leftovers=leftovers)
    atomic_write(project / REPORT_FILE,
                 (json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n").encode())
    return result
