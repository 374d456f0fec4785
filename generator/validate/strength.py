"""`gen validate --strength`: how strong a task's tests are, measured in its own containers.

1. **Coverage of the fix.** A fresh container of the task's image gets the fix (solution.sh:
   for swe tasks the gold patch), the tests (swe: the test files restored and the test patch
   applied, as eval.sh does) and coverage.py (the wheel `gen lock` pinned for the image's
   python3, from the store, unpacked beside gen's runner `covrun.py`: the image itself is not
   changed). The task's pytest call runs under coverage.py, one context per test: which lines
   the fix added or changed are executable, and which tests ran each of them. Terminal tasks:
   the Python files the solution wrote or changed under the work dir, against their text
   before it ran. Where this cannot be measured (no python3, a test command that is not a
   plain pytest call, a solution that changes no Python file) the report says why instead of
   giving a number.
2. **Mutants of the fix** (mutate.py): each in a fresh container, on top of the fix (swe:
   `git apply` of the mutant's diff, which must apply; terminal: the mutated file written over
   the solution's), then the task's own sealed test script (eval.sh / run-tests.sh), graded as
   the harness grades: swe FAIL_TO_PASS + PASS_TO_PASS, terminal every test. Not resolved:
   killed; past the time limit: timed out (counted as killed); resolved: survived, and then
   run once more under coverage: the same outcomes and the same executed lines as the fix
   make it equivalent-suspect (left out of the score), else it is a survivor: a wrong fix
   the tests accept.

The report and the gate are in strength_report.py.
"""

from __future__ import annotations

import base64
import io
import json
import shlex
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from generator.core.errors import GenError, ToolError
from generator.render.context import DEFAULT_TERMINAL_TEST, patch_files
from generator.render.grading import pytest_args
from generator.spec.model import SweTask, Task, TerminalTask
from generator.validate.checks import EVAL_SCRIPT, ORACLE_DIR, TEST_DIR
from generator.validate.covrun import SITECUSTOMIZE, parse_result
from generator.validate.mutate import (
    FileChange,
    Mutant,
    changed_lines,
    changed_lines_from_patch,
    generate,
    select,
)
from generator.validate.runner import Container, ContainerSpec
from generator.validate.runs import _TaskRunner
from generator.validate.testlog import (
    parse_swe_log,
    parse_tb_pytest,
    swe_maintained,
    swe_passed,
    tb_passed,
)

__all__ = ["DIR", "KILLED", "MutantResult", "StrengthResult", "coverage_lib", "measure_task"]

DIR = "/tmp/gen-strength"  # where the runner, coverage.py and its data live in the container
KILLED, SURVIVED, TIMED_OUT, EQUIVALENT, NOT_APPLICABLE = (
    "killed", "survived", "timed_out", "equivalent_suspect", "not_applicable")


@cache
def _runner_source() -> bytes:
    return (resources.files("generator") / "validate" / "covrun.py").read_bytes()


@cache
def _unpacked(wheel: bytes) -> tuple[tuple[str, bytes, int], ...]:
    out = []
    with zipfile.ZipFile(io.BytesIO(wheel)) as z:
        for info in sorted(z.infolist(), key=lambda i: i.filename):
            if info.is_dir() or (".dist-info/" in info.filename and \
                    not info.filename.endswith("METADATA")):
                continue
            mode = 0o755 if info.filename.endswith(".so") else 0o644
            out.append((info.filename, z.read(info), mode))
    return tuple(out)


def coverage_lib(wheel: bytes) -> dict[str, tuple[bytes, int]]:
    """What a container gets: the unpacked wheel, the sitecustomize that starts coverage in
    the tests' subprocesses, and the runner (covrun.py)."""
    files = {f"{DIR}/lib/{name}": (data, mode) for name, data, mode in _unpacked(wheel)}
    files[f"{DIR}/lib/sitecustomize.py"] = (SITECUSTOMIZE.encode(), 0o644)
    files[f"{DIR}/covrun.py"] = (_runner_source(), 0o644)
    return files


@dataclass
class MutantResult:
    mutant: Mutant
    status: str  # KILLED, SURVIVED, TIMED_OUT, EQUIVALENT, NOT_APPLICABLE
    seconds: float
    failing: list[str] = field(default_factory=list)  # the graded tests it made fail
    detail: str = ""  # why not applicable; what differed from the fix's coverage
    # survivors: tests of the run outside the graded ones that the mutant makes fail (listing
    # one in PASS_TO_PASS / FAIL_TO_PASS would kill it)
    telling: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        m = self.mutant
        return {"id": m.id, "status": self.status, "operator": m.operator, "path": m.path,
                "line": m.line, "description": m.description, "original": m.original,
                "mutated": m.mutated, "diff": m.diff, "seconds": round(self.seconds, 3),
                "failing_tests": self.failing[:20], "failing_count": len(self.failing),
                "detail": self.detail, "ungraded_tests_failing": self.telling[:20]}


@dataclass
class StrengthResult:
    task: str
    kind: str
    graded: list[str] = field(default_factory=list)  # the tests a mutant must fail (swe: F2P+P2P)
    fix_tests: list[str] = field(default_factory=list)  # swe: FAIL_TO_PASS; terminal: all
    test_command: str = ""
    workdir: str = ""
    coverage_version: str = ""
    coverage_reason: str | None = None  # why coverage could not be measured
    # path -> {line: [tests that ran it]} for the executable lines the fix changed
    lines: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)  # path -> the fixed file's lines
    not_python: list[str] = field(default_factory=list)  # changed files that are not Python
    mutants: list[MutantResult] = field(default_factory=list)
    generated: int = 0  # mutants generated before --max-mutants
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the harness itself failed
    seconds: float = 0.0
    coverage_seconds: float = 0.0  # the coverage run's pytest time
    plain_seconds: float = 0.0  # the same pytest call without coverage (same container)
    mutant_seconds: float = 0.0  # wall time of the mutant runs (-j at a time)


# --------------------------------------------------------------------------------------
# One task
# --------------------------------------------------------------------------------------


class _Session:
    def __init__(self, tr: _TaskRunner, lib: dict[str, tuple[bytes, int]] | None) -> None:
        self.tr = tr
        self.task: Task = tr.task
        self.lib = lib
        t = self.task
        self.workdir = t.environment.workdir
        if isinstance(t, SweTask):
            self.command = t.test_command
            self.graded = [*t.fail_to_pass, *t.pass_to_pass]
            self.fix_tests = list(t.fail_to_pass)
        else:
            assert isinstance(t, TerminalTask)
            self.command = t.test_command or DEFAULT_TERMINAL_TEST
            self.graded, self.fix_tests = [], []
        args = pytest_args(self.command)
        self.args = None if args is None else [
            a.replace("{TEST_DIR}", TEST_DIR) for a in args]

    def start(self, what: str) -> Container:
        t = self.task
        spec = ContainerSpec(env=self.tr.env, memory_mb=t.resources.memory_mb,
                             cpus=t.resources.cpus,
                             lifetime_sec=t.timeouts.agent_sec + 3 * t.timeouts.test_sec + 300,
                             labels={**self.tr.labels, "gen.validate.state": f"strength-{what}"})
        return self.tr.runner.start(self.tr.image, spec)

    def fix(self, c: Container) -> str | None:
        """Apply the fix (solution.sh); an error line, or None."""
        c.put_files(self.tr._solution_files())
        sol = c.exec(f"bash {ORACLE_DIR}/solution.sh", timeout=float(self.task.timeouts.agent_sec))
        if sol.timed_out or sol.exit_code != 0:
            return f"solution.sh {'timed out' if sol.timed_out else f'exited {sol.exit_code}'}"
        return None

    def mutate(self, c: Container, m: Mutant) -> str | None:
        """Put the mutant on top of the fix; why it does not apply, or None."""
        if isinstance(self.task, SweTask):
            c.put_files({f"{DIR}/mutant.patch": (m.diff.encode(), 0o644)})
            r = c.exec(f"cd {shlex.quote(self.workdir)} && git apply --verbose {DIR}/mutant.patch",
                       timeout=60)
            if r.exit_code != 0:
                return "git apply: " + " | ".join(r.output.strip().splitlines()[-2:])
            return None
        c.put_files({f"{DIR}/mutant.src": (m.text.encode(), 0o644)})
        r = c.exec(f"cat {DIR}/mutant.src > {shlex.quote('/' + m.path)}", timeout=60)
        return None if r.exit_code == 0 else f"cannot write /{m.path}: {r.output.strip()[-200:]}"

    def coverage_run(self, mutant: Mutant | None, *, measure: bool = True,
                     lines: Mapping[str, Sequence[int]] | None = None,
                     plain_too: bool = False) -> tuple[dict[str, Any] | None, str | None,
                                                       dict[str, Any] | None]:
        """The fix (and mutant) under covrun: (result, error, plain result). With `measure`
        off and no tests to run (`self.args` None), only the fixed files' text."""
        assert self.lib is not None or not measure
        c = self.start("coverage")
        try:
            snap = f"{DIR}/before.json"
            c.put_files(self.lib or {f"{DIR}/covrun.py": (_runner_source(), 0o644)})
            if isinstance(self.task, TerminalTask):
                r = c.exec(f"python3 {DIR}/covrun.py snapshot {snap} "
                           f"{shlex.quote(self.workdir)}", timeout=120)
                if r.exit_code != 0:
                    return None, f"snapshot failed: {r.output.strip()[-300:]}", None
            err = self.fix(c)
            if err is None and mutant is not None:
                err = self.mutate(c, mutant)
            if err is not None:
                return None, err, None
            config: dict[str, Any] = {"lib": f"{DIR}/lib", "workdir": self.workdir,
                                      "pytest_args": [*(self.args or []), "-p",
                                                      "no:cacheprovider"],
                                      "run_tests": self.args is not None,
                                      "data_dir": f"{DIR}/data", "measure": measure}
            tests = self.tr.test_files()[0]
            tests.pop(f"{TEST_DIR}/run-tests.sh", None)
            tests.pop(EVAL_SCRIPT, None)
            c.put_files(tests) if tests else None
            if isinstance(self.task, SweTask):
                t = self.task
                files = list(patch_files(t.test_patch))
                c.put_files({f"{DIR}/test.patch": (t.test_patch.encode(), 0o644)})
                restore = " && ".join(
                    f"{{ git checkout -q {t.base_commit} -- {shlex.quote(f)} 2>/dev/null || "
                    f"rm -f -- {shlex.quote(f)}; }}" for f in files) or "true"
                r = c.exec(f"cd {shlex.quote(self.workdir)} && {restore} && "
                           f"git apply {DIR}/test.patch", timeout=120)
                if r.exit_code != 0:
                    return None, f"the test patch does not apply: {r.output.strip()[-300:]}", None
                config["include"] = [f"{self.workdir.rstrip('/')}/{p}" for p in (lines or {})]
                config["lines"] = {f"{self.workdir.rstrip('/')}/{p}": list(v)
                                   for p, v in (lines or {}).items()}
            else:
                config["snapshot"] = snap
                config["roots"] = [self.workdir]
            timeout = float(self.task.timeouts.test_sec) * 3
            results = []
            for measured in ((measure, False) if plain_too else (measure,)):
                config["measure"] = measured
                config["data_dir"] = f"{DIR}/data-{int(measured)}"
                c.put_files({f"{DIR}/config.json": (json.dumps(config).encode(), 0o644)})
                r = c.exec(f"python3 {DIR}/covrun.py run {DIR}/config.json", timeout=timeout)
                got = parse_result(r.output)
                if got is None:
                    why = "timed out" if r.timed_out else \
                        " | ".join(r.output.strip().splitlines()[-3:])
                    return None, f"the coverage runner printed no result ({why})", None
                results.append(got)
            return results[0], None, results[1] if plain_too else None
        finally:
            c.remove()

    def fix_texts(self, lines: Mapping[str, Sequence[int]]) -> tuple[dict[str, Any] | None,
                                                                      str | None]:
        """The fixed files' text when no coverage run read it (no coverage.py, or a test
        command that is not plain pytest): swe tasks by `base64` of the patched files (no
        python3 needed), terminal tasks through the runner's snapshot (it needs python3)."""
        if isinstance(self.task, TerminalTask):
            got, err, _ = self.coverage_run(None, measure=False)
            return got, err
        c = self.start("texts")
        try:
            err = self.fix(c)
            if err is not None:
                return None, err
            files: dict[str, Any] = {}
            root = self.workdir.rstrip("/")
            for rel in sorted(lines):
                r = c.exec(f"base64 -w0 < {shlex.quote(f'{root}/{rel}')}", timeout=60)
                if r.exit_code != 0:
                    return None, f"cannot read {rel}: {r.output.strip()[-200:]}"
                try:
                    text = base64.b64decode(r.output.strip()).decode("utf-8")
                except ValueError as exc:
                    return None, f"cannot read {rel}: {exc}"
                files[f"{root}/{rel}"] = {"text": text, "before": None}
            return {"files": files, "outcomes": {}}, None
        finally:
            c.remove()

    def test_run(self, mutant: Mutant | None, timeout: float
                 ) -> tuple[str, list[str], str, float]:
        """The fix (and mutant) graded by the task's own test script:
        (status, failing graded tests, detail, seconds)."""
        t0 = time.monotonic()
        c = self.start("mutant" if mutant else "fix")
        try:
            err = self.fix(c)
            if err is None and mutant is not None:
                err = self.mutate(c, mutant)
                if err is not None:
                    return NOT_APPLICABLE, [], err, time.monotonic() - t0
            if err is not None:
                return NOT_APPLICABLE, [], err, time.monotonic() - t0
            files, command = self.tr.test_files()
            c.put_files(files)
            out = c.exec(command, timeout=timeout)
            if out.timed_out:
                return TIMED_OUT, [], f"past {timeout:g}s", time.monotonic() - t0
            if isinstance(self.task, SweTask):
                statuses = parse_swe_log(out.output, self.task.log_parser)
                failing = [n for n in self.task.fail_to_pass if not swe_passed(statuses.get(n))]
                failing += [n for n in self.task.pass_to_pass
                            if not swe_maintained(statuses.get(n))]
            else:
                got = parse_tb_pytest(out.output)
                statuses = got or {}
                failing = [n for n, s in sorted(statuses.items()) if not tb_passed(s)]
                if not statuses:
                    failing = ["(no test results)"]
            return (KILLED if failing else SURVIVED), failing, "", time.monotonic() - t0
        finally:
            c.remove()


def _fix_changes(s: _Session, task: Task, gold: dict[str, Any], res: StrengthResult,
                 patched: Mapping[str, frozenset[int]]) -> list[tuple[FileChange, str]]:
    """The files the fix changed, with the lines it added or changed (post-fix numbering),
    each with its absolute path in the container."""
    out: list[tuple[FileChange, str]] = []
    root = s.workdir.rstrip("/") + "/"
    for abspath, f in sorted(gold["files"].items()):
        if "error" in f:
            res.notes.append(f"{abspath}: coverage.py could not analyse it ({f['error']})")
            continue
        text = f["text"]
        if isinstance(task, SweTask):
            rel = abspath.removeprefix(root)
            changed = patched.get(rel, frozenset())
        else:
            rel = abspath.lstrip("/")
            changed = changed_lines(f.get("before"), text)
        out.append((FileChange(rel, text, changed), abspath))
    return out


def _record_coverage(res: StrengthResult, changes: Sequence[tuple[FileChange, str]],
                     gold: dict[str, Any]) -> None:
    for ch, abspath in changes:
        f = gold["files"][abspath]
        executable = set(f.get("executed", [])) | set(f.get("missing", []))
        ctx = {int(k): v for k, v in (f.get("contexts") or {}).items()}
        res.lines[ch.path] = {ln: sorted(ctx.get(ln, [])) for ln in sorted(ch.changed)
                              if ln in executable}
        res.texts[ch.path] = ch.after.splitlines()


def log_name(nodeid: str) -> str:
    """A pytest node id as SWE-bench's log parser names it (cut at the first space), which is
    how FAIL_TO_PASS / PASS_TO_PASS list it."""
    return nodeid.split(" ", 1)[0]


def _outcomes(result: dict[str, Any]) -> dict[str, str]:
    """The runner's outcomes by log name: failed when any test of that name failed."""
    out: dict[str, str] = {}
    for nodeid, outcome in sorted(result.get("outcomes", {}).items()):
        name = log_name(nodeid)
        if out.get(name) in (None, "passed") or outcome == "failed":
            out[name] = outcome if out.get(name) != "failed" else "failed"
    return out


def _same_behaviour(gold: dict[str, Any], got: dict[str, Any]) -> str:
    """'' when the mutant ran like the fix: every test of the run (graded or not: a test
    outside FAIL_TO_PASS / PASS_TO_PASS that tells them apart proves the mutant is not an
    equivalent fix) with the same outcome, the fixed files executing the same lines; else
    what differed."""
    g_out, m_out = _outcomes(gold), _outcomes(got)
    names = sorted(set(g_out) | set(m_out))
    diff = [n for n in names if g_out.get(n) != m_out.get(n)]
    if diff:
        return f"outcome of {diff[0]} differs" + (f" (and {len(diff) - 1} more)"
                                                   if len(diff) > 1 else "")
    for path, f in sorted(gold.get("files", {}).items()):
        m = got.get("files", {}).get(path, {})
        if f.get("executed") != m.get("executed"):
            a, b = set(f.get("executed", [])), set(m.get("executed", []))
            lines = sorted(a ^ b)
            return f"{path}: executes other lines ({', '.join(map(str, lines[:5]))})"
    return ""


def measure_task(tr: _TaskRunner, *, wheel: bytes | None, coverage_problem: str | None,
                 seed: int, max_mutants: int | None, jobs: int,
                 advance: Callable[[int], None] = lambda _n: None,
                 stop: threading.Event | None = None) -> StrengthResult:
    """Coverage of the task's fix and its mutants' fate (see the module docstring)."""
    t0 = time.monotonic()
    task = tr.task
    res = StrengthResult(task.id, task.kind)
    lib = coverage_lib(wheel) if wheel is not None else None
    s = _Session(tr, lib)
    res.graded, res.fix_tests = s.graded, s.fix_tests
    res.test_command, res.workdir = s.command, s.workdir
    if coverage_problem is not None:
        res.coverage_reason = coverage_problem
    elif s.args is None:
        res.coverage_reason = (f"the test command ({s.command}) is not a plain pytest call, so "
                               "coverage.py cannot run it")
    patched = changed_lines_from_patch(task.patch) if isinstance(task, SweTask) else {}
    if isinstance(task, SweTask):
        res.not_python = sorted(p for p in patched if not p.endswith(".py"))
        py_lines = {p: sorted(v) for p, v in patched.items() if p.endswith(".py")}
    else:
        py_lines = {}
    gold: dict[str, Any] | None = None
    try:
        if res.coverage_reason is None:
            gold, err, plain = s.coverage_run(None, lines=py_lines or None, plain_too=True)
            if gold is None:
                res.problems.append(f"the fix's coverage run failed: {err}")
            else:
                res.coverage_version = gold.get("coverage_version", "")
                res.coverage_seconds = float(gold.get("test_seconds", 0.0))
                res.plain_seconds = float((plain or {}).get("test_seconds", 0.0))
                outcomes = _outcomes(gold)
                bad = [n for n in s.graded if outcomes.get(n) not in ("passed", "skipped")]
                if bad:
                    res.notes.append(f"under coverage.py {bad[0]} did not pass "
                                     f"({outcomes.get(bad[0], 'not run')}): the coverage "
                                     "figures may be incomplete")
                if not gold["files"]:
                    res.coverage_reason = ("the solution changes no Python file under "
                                           f"{s.workdir}: its coverage cannot be measured"
                                           if isinstance(task, TerminalTask) else
                                           "the gold patch changes no Python file")
        advance(1)
        # the mutants, from the fixed files' text
        texts = gold
        if texts is None and not res.problems and (py_lines or isinstance(task, TerminalTask)):
            texts, err = s.fix_texts(py_lines)
            if texts is None:
                res.problems.append(f"cannot read the fixed files for mutants: {err}")
        changes = _fix_changes(s, task, texts, res, patched) if texts else []
        if gold:
            _record_coverage(res, changes, gold)
        mutants, notes = generate([ch for ch, _ in changes])
        res.notes += notes
        res.generated = len(mutants)
        chosen = select(mutants, seed=seed, max_mutants=max_mutants)
        base_status, base_failing, base_detail, base_sec = s.test_run(None, float(
            task.timeouts.test_sec))
        if base_status != SURVIVED:
            res.problems.append(f"the fix itself is not resolved by the task's test script "
                                f"({base_status}: {', '.join(base_failing[:3]) or base_detail})")
            chosen = []
        timeout = min(float(task.timeouts.test_sec), max(30.0, 5 * base_sec))

        def one(m: Mutant) -> MutantResult:
            if stop is not None and stop.is_set():
                raise ToolError("interrupted")
            status, failing, detail, sec = s.test_run(m, timeout)
            telling: list[str] = []
            if status == SURVIVED and gold is not None:
                got, err, _ = s.coverage_run(m, lines=py_lines or None)
                if got is None:
                    detail = f"not checked for equivalence: {err}"
                else:
                    detail = _same_behaviour(gold, got)
                    g_out, m_out = _outcomes(gold), _outcomes(got)
                    telling = sorted(n for n, o in m_out.items() if o == "failed"
                                     and g_out.get(n) == "passed" and n not in s.graded) \
                        if isinstance(task, SweTask) else []
                    if not detail:
                        status = EQUIVALENT
                        detail = "same test outcomes and same executed lines as the fix"
            advance(1)
            return MutantResult(m, status, sec, failing, detail,
                                telling if status == SURVIVED else [])

        advance(max(0, (max_mutants or 0) - len(chosen)))  # the progress bar counts max_mutants
        t_mutants = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            res.mutants = list(pool.map(one, chosen))
        res.mutant_seconds = time.monotonic() - t_mutants
    except GenError as exc:
        res.problems.append(f"engine: {exc.one_line()}")
    res.seconds = time.monotonic() - t0
    return res

