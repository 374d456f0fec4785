"""The pure parts of `gen validate --strength`: gen.yaml's `strength:` section, the coverage.py
tool lock (lock/tools.py), the figures, the gate and the text of the report
(validate/strength_report.py), the release check and the export metadata. The engine runs are
in tests/validate/test_strength.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from generator.core.errors import InputError
from generator.export.common import strength_figures
from generator.export.harbor import _harbor_toml
from generator.image.images import BuiltImage
from generator.lock.lock import stale_locks
from generator.lock.lockfiles import PythonPin, format_python_lock
from generator.lock.lockset import read_lockset
from generator.lock.tools import coverage_locks, coverage_wheel
from generator.release.preflight import CHECKS, preflight
from generator.render.pipeline import render
from generator.spec.model import StrengthConfig
from generator.spec.project import load_project
from generator.validate.mutate import FileChange, generate
from generator.validate.strength import (
    EQUIVALENT,
    KILLED,
    NOT_APPLICABLE,
    SURVIVED,
    TIMED_OUT,
    MutantResult,
    StrengthResult,
    _outcomes,
    _same_behaviour,
    _Session,
    log_name,
)
from generator.validate.strength_report import (
    fix_coverage,
    gate,
    mutation_score,
    report_json,
    task_json,
    text_lines,
)
from tests.helpers import (
    GEN_YAML,
    SWE_FILES,
    TERMINAL_FILES,
    build_project,
    fake_digest,
    swe_spec,
    terminal_spec,
)

REPO = Path(__file__).resolve().parents[2]
FIXED = "def f(x):\n    y = x + 1\n    return y > 2\n"
F2P = "t.py::test_f[a b]"  # as SWE-bench lists it: cut at the first space...
NODE = "t.py::test_f[a b-c]"  # ...of pytest's node id


def _mutants() -> list[Any]:
    got, notes = generate([FileChange("m.py", FIXED, frozenset({2, 3}))])
    assert not notes and len(got) >= 6
    return got


def _result(statuses: list[str], **over: Any) -> StrengthResult:
    ms = _mutants()
    res = StrengthResult("t", "swe", graded=[F2P.split(" ")[0]], fix_tests=[F2P.split(" ")[0]],
                         test_command="pytest -rA t.py", workdir="/testbed",
                         lines={"m.py": {2: [NODE, "t.py::test_other"], 3: [""]}},
                         mutants=[MutantResult(m, s, 1.0) for m, s in zip(ms, statuses,
                                                                          strict=False)])
    for k, v in over.items():
        setattr(res, k, v)
    return res


def test_swe_test_names_are_cut_like_swebench_cuts_them() -> None:
    assert log_name(NODE) == "t.py::test_f[a"
    gold = {"outcomes": {NODE: "passed", "t.py::test_f[a b-d]": "passed"}}
    bad = {"outcomes": {NODE: "passed", "t.py::test_f[a b-d]": "failed"}}
    assert _outcomes(gold) == {"t.py::test_f[a": "passed"}
    assert _outcomes(bad) == {"t.py::test_f[a": "failed"}  # one failing case fails the name


def test_fix_coverage_counts_lines_run_by_a_fix_test_or_at_import() -> None:
    res = _result([])
    assert fix_coverage(res) == (2, 2)  # line 2 by the F2P test, line 3 at import
    res.lines["m.py"][4] = ["t.py::test_other"]  # a P2P test only: not a fix test
    assert fix_coverage(res) == (2, 3)
    res.coverage_reason = "no python3"
    assert fix_coverage(res) is None  # not measured: no number


def test_the_score_counts_timeouts_as_killed_and_leaves_equivalents_out() -> None:
    assert mutation_score(_result([])) is None
    res = _result([KILLED, TIMED_OUT, SURVIVED, EQUIVALENT, NOT_APPLICABLE, SURVIVED])
    assert mutation_score(res) == 0.5  # (1 + 1) / (2 + 2)


def test_the_gate_names_survivors_and_uncovered_lines() -> None:
    cfg = StrengthConfig(min_fix_coverage=1.0, min_mutation_score=0.8)
    strong = _result([KILLED] * 6)
    assert gate(strong, cfg) == [] and gate(strong, None) == []
    weak = _result([KILLED, SURVIVED, KILLED, SURVIVED, KILLED, KILLED])
    weak.lines["m.py"][4] = []
    problems = gate(weak, cfg)
    assert len(problems) == 2, problems
    assert problems[0].startswith("strength: fix coverage 2/3 is below min_fix_coverage 1 "
                                  "(not run by a fix test: m.py:4)")
    surv = [m.mutant for m in weak.mutants if m.status == SURVIVED]
    assert problems[1].startswith("strength: mutation score 0.67 is below min_mutation_score "
                                  "0.8: 2 surviving mutant(s) ")
    assert all(f"{m.id} (m.py:{m.line} {m.description})" in problems[1] for m in surv)
    # a threshold left out is not enforced; a harness failure always is
    assert gate(weak, StrengthConfig(min_mutation_score=0.5)) == []
    weak.problems.append("the fix's coverage run failed: x")
    assert gate(weak, None) == ["strength: the fix's coverage run failed: x"]


def test_the_report_shows_each_survivor_with_what_kills_it() -> None:
    res = _result([SURVIVED, KILLED])
    res.mutants[0].telling = ["t.py::test_other"]
    report = report_json([(res, "r@sha256:" + "a" * 64)], StrengthConfig(min_mutation_score=1),
                         seed=0, max_mutants=None, jobs=1, seconds=1.0)
    t = report["tasks"]["t"]
    assert report["ok"] is False and t["ok"] is False
    assert t["mutants"]["survived"] == 1 and t["mutation_score"] == 0.5
    (s,) = t["survivors"]
    m = res.mutants[0].mutant
    assert s["diff"] == m.diff and s["where"]["line"] == m.line
    assert s["where"]["must_fail"] == "cd /testbed && pytest -rA t.py"
    assert s["ungraded_tests_failing"] == ["t.py::test_other"]
    text = "\n".join(text_lines(report))
    assert f"survivor {m.id} [{m.operator}] m.py:{m.line}: {m.description}" in text
    assert "        " + m.diff.splitlines()[0] in text
    assert "listing it in PASS_TO_PASS kills it): t.py::test_other" in text
    assert "line m.py:2" not in text  # covered lines: only with verbose
    assert "line m.py:2: " + NODE in "\n".join(text_lines(report, verbose=True))
    unmeasured = task_json(_result([], coverage_reason="no python3"), None)
    assert unmeasured["fix_coverage"] is None and unmeasured["coverage_unmeasured"] == \
        "no python3"


def test_equivalence_needs_every_test_and_every_executed_line_the_same() -> None:
    gold = {"outcomes": {"a": "passed", "b": "passed"},
            "files": {"/m.py": {"executed": [1, 2, 3]}}}
    assert _same_behaviour(gold, json.loads(json.dumps(gold))) == ""
    other = {"outcomes": {"a": "passed", "b": "failed"}, "files": gold["files"]}
    assert _same_behaviour(gold, other) == "outcome of b differs"  # ungraded tests count too
    path = {"outcomes": gold["outcomes"], "files": {"/m.py": {"executed": [1, 3]}}}
    assert _same_behaviour(gold, path) == "/m.py: executes other lines (2)"


def _config(tmp_path: Path, strength: Any) -> Path:
    p = build_project(tmp_path / "p", {"alpha": (terminal_spec(), TERMINAL_FILES)},
                      config={**GEN_YAML, "strength": strength})
    return p


@pytest.mark.parametrize(("strength", "words"), [
    ({"min_mutation_score": 80}, "'strength.min_mutation_score': min_mutation_score is 80, a "
     "fraction above 1"),
    ({"min_fix_coverage": "all"}, "'strength.min_fix_coverage': must be a number"),
    ({"mutation": 0.8}, "strength"),
    ({"coverage": "pytest-cov"}, "strength.coverage"),
])
def test_bad_strength_config_is_one_line_naming_the_field(tmp_path: Path, strength: Any,
                                                          words: str) -> None:
    p = _config(tmp_path, strength)
    with pytest.raises(InputError) as exc:
        load_project(p)
    line = exc.value.one_line()
    assert "gen.yaml" in line and words in line and "\n" not in line, line


def test_coverage_is_locked_per_interpreter_and_checked_like_every_lock(tmp_path: Path) -> None:
    project = load_project(REPO)
    (tool,) = coverage_locks(project, read_lockset(REPO))
    assert tool.rel == "lockfiles/tools/coverage-3.11-x86_64-manylinux_2_36.txt"
    assert tool.tasks == ("csv-stats-cli", "fix-log-parser", "inflection-humanize-id-suffix")
    assert stale_locks(project) == []  # the committed tool lock is current
    p = tmp_path / "ex"
    p.mkdir()
    for name in ("gen.yaml", "tasks", "lockfiles"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, p / name)
    text = (p / "gen.yaml").read_text()
    (p / "gen.yaml").write_text(text.replace("  max_mutants: 20\n",
                                             "  max_mutants: 20\n  coverage: coverage==7.6.1\n"))
    assert stale_locks(load_project(p)) == [
        f"{tool.rel}: stale (gen.yaml's strength.coverage changed)"]
    (p / "gen.yaml").write_text(text.split("strength:")[0] + "defaults:"
                                + text.split("defaults:", 1)[1])
    assert stale_locks(load_project(p)) == [
        f"{tool.rel}: left over (no task's interpreter needs it)"]
    with pytest.raises(InputError, match=r"gen\.yaml has no 'strength:' section"):
        coverage_wheel(load_project(p), load_project(p).tasks[0], read_lockset(p), {})


def test_the_wheel_comes_from_what_fetch_recorded(tmp_path: Path) -> None:
    project = load_project(REPO)
    task = project.tasks[0]
    with pytest.raises(InputError, match=r"no fetched wheel for coverage==7\.18\.0"):
        coverage_wheel(project, task, read_lockset(REPO), {})
    lock = (REPO / coverage_locks(project, read_lockset(REPO))[0].rel).read_text()
    sha = lock.split("--hash=sha256:")[5].split()[0]
    name = "coverage-7.18.0-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert coverage_wheel(project, task, read_lockset(REPO), {sha: name}) == \
        (name, sha, "7.18.0")


def _image(task: str) -> BuiltImage:
    d = fake_digest(task)
    return BuiltImage(task=task, ref=f"r/{task}@{d}", repository=f"r/{task}", digest=d,
                      platform="linux/amd64", key=fake_digest("k"), engine="buildah",
                      layout="")


def test_exports_carry_the_figures_measured_on_the_exported_image(tmp_path: Path) -> None:
    images = {"alpha": _image("alpha"), "beta": _image("beta")}
    report = {"tasks": {
        "alpha": {"ok": True, "image": images["alpha"].ref, "mutation_score": 0.75,
                  "fix_coverage": {"covered": 3, "total": 4},
                  "mutants": {"run": 5, "killed": 2, "timed_out": 1, "survived": 1,
                              "equivalent_suspect": 1}},
        "beta": {"ok": True, "image": "r/beta@" + fake_digest("old"), "mutation_score": 1.0,
                 "fix_coverage": None, "mutants": {}}}}
    (tmp_path / ".gen" / "validate").mkdir(parents=True)
    (tmp_path / ".gen" / "validate" / "strength.json").write_text(json.dumps(report))
    figs = strength_figures(tmp_path, images)
    assert list(figs) == ["alpha"]  # beta was measured on another image
    assert figs["alpha"] == {"fix_lines_covered": "3/4", "mutants_run": 5, "mutants_killed": 3,
                             "mutants_survived": 1, "mutants_equivalent_suspect": 1,
                             "gate_passed": True, "measured_on": images["alpha"].digest,
                             "mutation_score": 0.75}
    project = build_project(tmp_path / "p", {"alpha": (terminal_spec(), TERMINAL_FILES)})
    task = load_project(project).tasks[0]
    toml = _harbor_toml(task, "demo", "1.0.0", images["alpha"], figs["alpha"])
    assert 'test_strength = { fix_lines_covered = "3/4"' in toml or \
        "[metadata.test_strength]" in toml, toml
    assert 'fix_lines_covered = "3/4"' in toml


def _tool_lock(p: Path) -> None:
    project = load_project(p)
    for tool in coverage_locks(project, read_lockset(p)):
        (p / tool.rel).parent.mkdir(parents=True, exist_ok=True)
        (p / tool.rel).write_text(format_python_lock(
            tool.input, [tool.requirement],
            [PythonPin("coverage", "7.18.0", (fake_digest("wheel"),))]))


def test_release_refuses_weak_or_unmeasured_tasks_unless_waived(tmp_path: Path) -> None:
    p = _config(tmp_path, {"min_mutation_score": 0.8})
    _tool_lock(p)
    assert stale_locks(load_project(p)) == []
    others = [w for c, w in CHECKS.items() if c not in ("strength", "lock")]
    got = preflight(p, allow=others)
    assert got.problems == {"strength": [
        "no .gen/validate/strength.json: the tests' strength was not measured (run `gen "
        "validate --strength`, or --allow weak-tests)"]}
    (p / ".gen" / "validate").mkdir(parents=True)
    rep = p / ".gen" / "validate" / "strength.json"
    rep.write_text(json.dumps({"tasks": {"alpha": {
        "ok": False, "image": "x", "problems": ["strength: mutation score 0.50 is below ..."]}}}))
    assert preflight(p, allow=others).problems["strength"] == [
        "task 'alpha' has weak tests: mutation score 0.50 is below ..."]
    waived = preflight(p, allow=[*others, "weak-tests"])
    assert waived.ok and waived.waived[-1] == "strength"
    rep.write_text(json.dumps({"tasks": {}, "skipped": {"alpha": "not sound"}}))
    assert preflight(p, allow=others).problems["strength"] == [
        "task 'alpha' was not measured: not sound (run `gen validate --strength`)"]
    # without gen.yaml `strength:` there is no gate to check, and the summary says nothing
    q = build_project(tmp_path / "q", {"alpha": (terminal_spec(), TERMINAL_FILES)})
    quiet = preflight(q, allow=others)
    assert "strength" not in quiet.problems and "strength" not in quiet.summary()


def test_the_release_manifest_covers_the_strength_report(tmp_path: Path) -> None:
    from generator.cli import main

    p = _config(tmp_path, {"min_mutation_score": 0.8})
    _tool_lock(p)
    render(p)
    (p / ".gen" / "validate").mkdir(parents=True)
    report = p / ".gen" / "validate" / "strength.json"
    report.write_text(json.dumps({"ok": True, "tasks": {}}))
    out = tmp_path / "rel"
    assert main(["release", "--project", str(p), "--sign", "none", "--out", str(out),
                 "--allow", "all"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reports"]["strength"] == "sha256:" + hashlib.sha256(
        report.read_bytes()).hexdigest()
    assert (out / "strength-report.json").read_bytes() == report.read_bytes()
    assert main(["verify-release", str(out), "--allow-unsigned"]) == 0
    (out / "strength-report.json").write_text("{}")
    assert main(["verify-release", str(out), "--allow-unsigned"]) == 1


class _Exec:
    def __init__(self, code: int, output: str) -> None:
        self.exit_code, self.output, self.timed_out, self.seconds = code, output, False, 0.1


class _FakeContainer:
    """Records what a session puts in and runs; `git apply` fails, everything else works."""

    id = "fake"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ran: list[str] = []

    def put_files(self, files: dict[str, tuple[bytes, int]]) -> None:
        self.files.update({k: v[0] for k, v in files.items()})

    def exec(self, script: str, *, timeout: float) -> _Exec:
        self.ran.append(script)
        if "git apply" in script:
            return _Exec(1, "error: patch failed: m.py:2\nerror: m.py: patch does not apply")
        return _Exec(0, "")

    def remove(self) -> None:
        self.ran.append("removed")


def test_a_mutant_that_does_not_apply_is_reported_not_scored(tmp_path: Path) -> None:
    from generator.validate.runs import _TaskRunner

    project = build_project(tmp_path / "p", {"calc": (swe_spec(), SWE_FILES)})
    render(project)
    task = load_project(project).tasks[0]
    container = _FakeContainer()

    class _Runner:
        name = "fake"

        def start(self, ref: str, spec: Any) -> _FakeContainer:
            return container

    tr = _TaskRunner(task, project / "dataset" / task.id, "img", _Runner(),  # type: ignore[arg-type]
                     env={}, labels={})
    s = _Session(tr, None)
    m = _mutants()[0]
    status, failing, detail, _ = s.test_run(m, 10.0)
    assert status == NOT_APPLICABLE and failing == []
    assert detail == "git apply: error: patch failed: m.py:2 | error: m.py: patch does not apply"
    assert container.files["/tmp/gen-strength/mutant.patch"] == m.diff.encode()
    assert "eval.sh" not in " ".join(container.ran)  # the tests never ran
    assert container.ran[-1] == "removed"
    res = _result([NOT_APPLICABLE, KILLED])
    assert mutation_score(res) == 1.0 and task_json(res, None)["mutants"]["not_applicable"] == 1
    assert "not applicable" in "\n".join(text_lines(report_json(
        [(res, "i")], None, seed=0, max_mutants=None, jobs=1, seconds=0.0)))
