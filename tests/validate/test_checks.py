"""gen validate without an engine: anti-cheat checks, grading, flakes, derive and spec edits,
and the whole flow through a scripted fake runner."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from generator.cli import main
from generator.image.images import BuiltImage, save_images
from generator.image.oci import Layout
from generator.render.pipeline import render
from generator.spec.model import SweTask
from generator.spec.project import load_project
from generator.validate.checks import (
    check_image_contents,
    heredoc_bodies,
    instruction_leak,
    is_test_path,
    patch_checks,
    secret_files,
    solution_lines,
)
from generator.validate.grading import (
    TaskVerdict,
    derive_lists,
    find_flakes,
    grade_swe,
    grade_terminal,
)
from generator.validate.project import REPORT_FILE, Options, validate_project
from generator.validate.runner import ContainerSpec, ExecResult
from generator.validate.runs import RunResult
from generator.validate.spec_edit import replace_spec_lists
from tests.helpers import SWE_FILES, TERMINAL_FILES, build_project, swe_spec, terminal_spec

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------
# anti-cheat
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("tests/test_calc.py", True), ("test_inflection.py", True), ("pkg/tests/data.json", True),
    ("conftest.py", True), ("src/calc_test.go", True), ("web/app.spec.ts", True),
    ("calc.py", False), ("inflection/__init__.py", False), ("latest.py", False),
    ("attestation/verify.py", False), ("docs/testing.md", False),
])
def test_is_test_path(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


TEST_FILE_EDIT = """diff --git a/tests/conftest.py b/tests/conftest.py
--- a/tests/conftest.py
+++ b/tests/conftest.py
@@ -0,0 +1 @@
+collect_ignore = ["test_calc.py"]
"""

CODE_IN_TEST_PATCH = """diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""


def _swe(tmp_path: Path, files: Mapping[str, str]) -> SweTask:
    project = build_project(tmp_path / "p", {"calc": (swe_spec(), {**SWE_FILES, **files})})
    task = load_project(project).tasks[0]
    assert isinstance(task, SweTask)
    return task


def test_patch_checks(tmp_path: Path) -> None:
    assert patch_checks(_swe(tmp_path / "ok", {})) == []
    bad_gold = _swe(tmp_path / "g", {"gold.patch": SWE_FILES["gold.patch"] + TEST_FILE_EDIT})
    [problem] = patch_checks(bad_gold)
    assert "gold patch (gold.patch) edits test file(s) tests/conftest.py" in problem
    bad_tests = _swe(tmp_path / "t", {"test.patch": SWE_FILES["test.patch"] + CODE_IN_TEST_PATCH})
    problems = patch_checks(bad_tests)
    assert "test patch (test.patch) edits non-test file(s) calc.py" in problems[-1]


def test_instruction_leak(tmp_path: Path) -> None:
    solution = "#!/bin/bash\nset -euo pipefail\ncd /app\necho \"print('hello')\" > /app/hello.py\n"
    ok = build_project(tmp_path / "a", {"t": (terminal_spec(), TERMINAL_FILES)})
    task = load_project(ok).tasks[0]
    assert solution_lines(task) == ["echo \"print('hello')\" > /app/hello.py"]
    assert instruction_leak(task.instruction, solution_lines(task)) == []
    leaky = terminal_spec(instruction="Fix hello.py. Hint: run\n  echo \"print('hello')\"  > "
                          "/app/hello.py\n")
    bad = build_project(tmp_path / "b", {"t": (leaky, {**TERMINAL_FILES,
                                                        "solution.sh": solution})})
    task = load_project(bad).tasks[0]
    assert instruction_leak(task.instruction, solution_lines(task)) == [
        "echo \"print('hello')\" > /app/hello.py"]
    # SWE: the gold patch's added lines against the problem statement
    swe = _swe(tmp_path / "s", {})
    assert solution_lines(swe) == ["return a + b"]
    assert instruction_leak("add() is wrong: it should `return a + b`", solution_lines(swe))
    assert not instruction_leak(swe.problem_statement, solution_lines(swe))


def test_heredoc_bodies() -> None:
    script = "cat > /a <<'EOF'\nline 1\n  line 2\nEOF\ncat <<-END >/b\n\tx\n\tEND\necho done\n"
    assert heredoc_bodies(script) == ["line 1\n  line 2\n", "x\n"]


def _layout(root: Path, files: Mapping[str, bytes], name: str = "img") -> str:
    root.parent.mkdir(parents=True, exist_ok=True)
    tar_path = root.parent / f"{root.name}-layer.tar"
    with tarfile.open(tar_path, "w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    layout = Layout.create(root)
    desc, diff = layout.add_gzip_layer(tar_path)
    manifest = layout.write_image([(desc, diff)], {"config": {}})
    layout.tag(manifest, name)
    return manifest.digest


BAKED_SOLUTION = "#!/bin/bash\n# the reference solution\necho \"print('hello')\" > /app/hello.py\n"


def _rendered_terminal(tmp_path: Path) -> tuple[Path, Path]:
    project = build_project(tmp_path / "p", {"t": (terminal_spec(), {
        **TERMINAL_FILES, "solution.sh": BAKED_SOLUTION,
        "tests/test_outputs.py": "def test_hello():\n    assert open('/app/hello.py').read()\n"})})
    render(project)
    return project, project / "dataset" / "t"


def test_image_contents_are_checked_by_path_and_hash(tmp_path: Path) -> None:
    project, task_dir = _rendered_terminal(tmp_path)
    task = load_project(project).tasks[0]
    secrets = secret_files(task, task_dir)
    labels = {s.label for s in secrets}
    assert {"tests/test_outputs.py", "run-tests.sh", "solution.sh"} <= labels
    clean = tmp_path / "clean"
    _layout(clean, {"app/hello.py": b"print('helo')\n", "app/empty": b"",
                    "usr/lib/tests.txt": b"not a test\n"})
    assert check_image_contents(clean, "img", secrets) == []
    baked = tmp_path / "baked"
    _layout(baked, {"app/hello.py": b"print('helo')\n",
                    "usr/share/doc/notes.txt": BAKED_SOLUTION.encode(),
                    "oracle/solution.sh": b"true\n"})
    problems = check_image_contents(baked, "img", secrets)
    assert any("/usr/share/doc/notes.txt" in p and "identical to solution" in p
               for p in problems), problems
    assert any("/oracle/solution.sh" in p and "copied in only at test time" in p
               for p in problems), problems
    leaked_tests = tmp_path / "tests-in-image"
    _layout(leaked_tests, {"tests/test_outputs.py": (task_dir / "tests/test_outputs.py")
                           .read_bytes(), "opt/copy.py": (task_dir / "tests/test_outputs.py")
                           .read_bytes()})
    problems = check_image_contents(leaked_tests, "img", secrets)
    assert len(problems) == 2 and "identical to tests/test_outputs.py" in problems[1]


def test_a_fixture_the_agent_is_given_is_no_secret(tmp_path: Path) -> None:
    sample = "10.0.0.1 - - [x] GET / 200 12\n" * 3
    project = build_project(tmp_path / "p", {"t": (terminal_spec(files=[
        {"src": "app/sample.log", "dest": "/app/sample.log"}]), {
        **TERMINAL_FILES, "app/sample.log": sample, "tests/fixtures/sample.log": sample,
        "tests/fixtures/expected.txt": "the expected summary\n"})})
    render(project)
    task = load_project(project).tasks[0]
    labels = {s.label for s in secret_files(task, project / "dataset" / "t")}
    assert "tests/fixtures/expected.txt" in labels
    assert "tests/fixtures/sample.log" not in labels


# --------------------------------------------------------------------------------------
# grading and flakes
# --------------------------------------------------------------------------------------


def _run(state: str, i: int, statuses: dict[str, str] | None, **kw: object) -> RunResult:
    return RunResult(state, i, statuses, 0 if statuses else 1, 1.0, **kw)  # type: ignore[arg-type]


def _terminal(unsolved: list[dict[str, str] | None], solved: list[dict[str, str] | None],
              **kw: object) -> TaskVerdict:
    v = TaskVerdict("t", "terminal", "img")
    grade_terminal(v, {"unsolved": [_run("unsolved", i + 1, s) for i, s in enumerate(unsolved)],
                       "solved": [_run("solved", i + 1, s, **kw) for i, s in enumerate(solved)]})
    return v


def test_sound_terminal_task() -> None:
    v = _terminal([{"a": "FAILED", "b": "PASSED"}] * 3, [{"a": "PASSED", "b": "PASSED"}] * 3)
    assert v.ok and v.tests["a"]["role"] == "fail_to_pass" and v.tests["b"]["role"] == \
        "pass_to_pass"
    assert v.summary == {"unsolved": "1/2 pass, 1/2 pass, 1/2 pass",
                         "solved": "2/2 pass, 2/2 pass, 2/2 pass"}


def test_tests_that_already_pass_are_caught() -> None:
    v = _terminal([{"a": "PASSED"}] * 2, [{"a": "PASSED"}] * 2)
    assert v.problems == ["state 'unsolved' run 1: the tests already pass without the fix (all "
                          "1 tests passed: expected at least one to fail)"]


def test_tests_that_fail_with_the_fix_are_caught() -> None:
    v = _terminal([{"a": "FAILED"}] * 2, [{"a": "FAILED"}] * 2,
                  network_error="Network is unreachable")
    [p] = v.problems
    assert p.startswith("state 'solved' runs 1, 2: test a fails even with the fix: expected "
                        "PASSED, observed FAILED (the output shows a network error: 'Network is "
                        "unreachable'")


def test_flaky_test_is_named() -> None:
    v = _terminal([{"a": "FAILED", "coin": "PASSED"}, {"a": "FAILED", "coin": "FAILED"},
                   {"a": "FAILED", "coin": "PASSED"}], [{"a": "PASSED", "coin": "PASSED"}] * 3)
    assert v.flaky == ["coin"]
    assert v.problems == ["flaky: test coin in state 'unsolved': PASSED in runs 1, 3; FAILED in "
                          "run 2"]
    assert v.tests["coin"]["flaky"] and not v.tests["coin"]["ok"]


def test_missing_test_in_one_run_is_a_flake() -> None:
    runs = [_run("s", 1, {"a": "PASSED", "b": "PASSED"}), _run("s", 2, {"a": "PASSED"})]
    assert find_flakes("s", runs) == {"b": "flaky: test b in state 's': PASSED in run 1; "
                                           "MISSING in run 2"}


def test_timeout_and_no_results_are_reported() -> None:
    v = TaskVerdict("t", "terminal", "img")
    hung = _run("solved", 1, None, timed_out="tests",
                errors=["the tests ran past the task's test timeout (10s); the container was "
                        "killed"])
    grade_terminal(v, {"unsolved": [_run("unsolved", 1, {"a": "FAILED"})], "solved": [hung]})
    assert v.problems == ["state 'solved' run 1: the tests ran past the task's test timeout "
                          "(10s); the container was killed"]
    v = _terminal([{"a": "FAILED"}], [None])
    assert v.problems[0].startswith("state 'solved' run 1: no test results in the output")


def test_swe_grading() -> None:
    before = {"t::f2p": "FAILED", "t::p2p": "PASSED", "t::other": "PASSED"}
    after = {"t::p2p": "PASSED", "t::f2p": "PASSED", "t::other": "PASSED"}
    runs = {"test_patch": [_run("test_patch", 1, before)], "gold": [_run("gold", 1, after)]}
    v = TaskVerdict("s", "swe", "img")
    grade_swe(v, runs, f2p=["t::f2p"], p2p=["t::p2p"])
    assert v.ok, v.problems
    assert v.tests["t::f2p"]["observed"] == {"test_patch": ["FAILED"], "gold": ["PASSED"]}
    v = TaskVerdict("s", "swe", "img")
    grade_swe(v, runs, f2p=["t::other", "t::gone"], p2p=["t::f2p"])
    assert v.problems == [
        "state 'test_patch' run 1: FAIL_TO_PASS test t::other: expected FAILED, observed PASSED "
        "(the test passes without the fix)",
        "state 'test_patch' run 1: PASS_TO_PASS test t::f2p: expected PASSED, observed FAILED",
        "state 'gold' run 1: FAIL_TO_PASS test t::gone: expected PASSED, observed MISSING (the "
        "test fails even with the fix)",
    ]
    v = TaskVerdict("s", "swe", "img")
    grade_swe(v, runs, f2p=[], p2p=["t::p2p"])
    assert v.problems[0].startswith("FAIL_TO_PASS is empty")


def test_swe_run_tests_sh_is_graded_too() -> None:
    before = {"t::f2p": "FAILED", "t::p2p": "PASSED"}
    after = {"t::f2p": "PASSED", "t::p2p": "PASSED"}
    runs = {"test_patch": [_run("test_patch", 1, before, tb_ran=True, tb_statuses=after)],
            "gold": [_run("gold", 1, after, tb_ran=True, tb_statuses=before)]}
    v = TaskVerdict("s", "swe", "img")
    grade_swe(v, runs, f2p=["t::f2p"], p2p=["t::p2p"])
    assert v.problems == [
        "state 'test_patch' run 1: run-tests.sh (the Terminal-Bench entry point) passes without "
        "the fix: all 2 tests passed",
        "state 'gold' run 1: run-tests.sh (the Terminal-Bench entry point): test t::f2p expected "
        "PASSED, observed FAILED"]


def test_derive_lists_follow_swebench() -> None:
    before = {"a": "FAILED", "b": "PASSED", "c": "ERROR", "d": "PASSED", "e": "SKIPPED"}
    after = {"b": "PASSED", "a": "PASSED", "new": "PASSED", "d": "FAILED", "c": "XFAIL",
             "e": "SKIPPED"}
    assert derive_lists(before, after) == (["a", "new", "c"], ["b"])


# --------------------------------------------------------------------------------------
# writing derived lists
# --------------------------------------------------------------------------------------


def test_spec_edit_keeps_every_other_byte() -> None:
    text = (REPO / "tasks/inflection-humanize-id-suffix/task.spec.yaml").read_text()
    declared = yaml.safe_load(text)
    same = replace_spec_lists(text, {"FAIL_TO_PASS": declared["FAIL_TO_PASS"],
                                     "PASS_TO_PASS": declared["PASS_TO_PASS"]})
    assert same == text
    new = replace_spec_lists(text, {"FAIL_TO_PASS": ["x.py::a"],
                                    "PASS_TO_PASS": ["x.py::b[1-2]", "x.py::c"]})
    head, tail = text.split("FAIL_TO_PASS:")[0], text.split("test_command:")[1]
    assert new.startswith(head) and new.endswith("test_command:" + tail)
    assert "FAIL_TO_PASS:\n  - x.py::a\nPASS_TO_PASS:\n  - x.py::b[1-2]\n  - x.py::c\n" in new


@pytest.mark.parametrize(("text", "expected"), [
    ("kind: swe\nFAIL_TO_PASS: [a, b]  # old\nPASS_TO_PASS: []\nx: 1\n",
     "kind: swe\nFAIL_TO_PASS:\n  - n1  # old\nPASS_TO_PASS:\n  - '[weird]'\nx: 1\n"),
    ("kind: swe\nFAIL_TO_PASS:\n    - a\n    - b\n# keep me\nx: 1\n",
     "kind: swe\nFAIL_TO_PASS:\n    - n1\n# keep me\nx: 1\nPASS_TO_PASS:\n  - '[weird]'\n"),
    ("kind: swe\nx: 1", "kind: swe\nx: 1\nFAIL_TO_PASS:\n  - n1\nPASS_TO_PASS:\n"
     "  - '[weird]'\n"),
])
def test_spec_edit_shapes(text: str, expected: str) -> None:
    got = replace_spec_lists(text, {"FAIL_TO_PASS": ["n1"], "PASS_TO_PASS": ["[weird]"]})
    assert got == expected
    assert yaml.safe_load(got)["PASS_TO_PASS"] == ["[weird]"]


# --------------------------------------------------------------------------------------
# the whole flow, through a scripted runner
# --------------------------------------------------------------------------------------

PASS_LOG = "===== short test summary info =====\nPASSED ../tests/test_outputs.py::test_hello\n"
FAIL_LOG = "===== short test summary info =====\nFAILED ../tests/test_outputs.py::test_hello\n"


@dataclass
class FakeContainer:
    runner: FakeRunner
    id: str
    files: dict[str, bytes] = field(default_factory=dict)
    solved: bool = False

    def put_files(self, files: Mapping[str, tuple[bytes, int]]) -> None:
        self.files.update({k: v for k, (v, _) in files.items()})

    def exec(self, script: str, *, timeout: float) -> ExecResult:
        self.runner.scripts.append(script)
        return self.runner.behaviour(self, script, timeout)

    def kill(self) -> None:
        self.runner.killed.append(self.id)

    def remove(self) -> None:
        self.runner.live.discard(self.id)


@dataclass
class FakeRunner:
    behaviour: Callable[[FakeContainer, str, float], ExecResult]
    name: str = "fake"
    live: set[str] = field(default_factory=set)
    killed: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    specs: list[ContainerSpec] = field(default_factory=list)
    seen_files: list[set[str]] = field(default_factory=list)
    containers_files: list[dict[str, bytes]] = field(default_factory=list)

    def available(self) -> str | None:
        return None

    def version(self) -> str:
        return "fake 1.0"

    def ensure_image(self, ref: str, layout: Path | None = None, name: str = "") -> str:
        return ref

    def start(self, ref: str, spec: ContainerSpec) -> FakeContainer:
        self.specs.append(spec)
        c = FakeContainer(self, f"c{len(self.specs)}")
        self.containers_files.append(c.files)
        self.live.add(c.id)
        return c

    def containers(self, label: str) -> list[str]:
        return sorted(self.live)


def _honest(c: FakeContainer, script: str, timeout: float) -> ExecResult:
    c.runner.seen_files.append(set(c.files))
    if "solution.sh" in script:
        c.solved = True
        return ExecResult(0, "", 0.1)
    return ExecResult(0 if c.solved else 1, PASS_LOG if c.solved else FAIL_LOG, 0.1)


def _project_with_image(tmp_path: Path) -> Path:
    project, _ = _rendered_terminal(tmp_path)
    digest = _layout(project / ".gen/build/oci/x", {"app/hello.py": b"print('helo')\n",
                                                    "usr/bin/python3.11": b"\x7fELF fake"}, "t")
    save_images(project, {"t": BuiltImage("t", f"127.0.0.1:5000/demo/t@{digest}",
                                          "127.0.0.1:5000/demo/t", digest, "linux/amd64",
                                          "sha256:k", "fake", ".gen/build/oci/x")})
    return project


def test_flow_with_a_fake_runner(tmp_path: Path) -> None:
    project = _project_with_image(tmp_path)
    fake = FakeRunner(_honest)
    result = validate_project(project, Options(runs=2, seed=7), runner=fake)
    assert result.ok, [v.problems for v in result.verdicts]
    assert len(fake.specs) == 4 and not fake.live  # 2 states x 2 runs, all removed
    spec = fake.specs[0]
    assert spec.env["PYTHONHASHSEED"] == "0" and spec.env["GEN_SEED"] == "7"
    assert spec.env["TZ"] == "UTC" and spec.env["LANG"] == "C.UTF-8"
    assert spec.memory_mb == 2048 and spec.labels["gen.validate.task"] == "t"
    # the solution ran before any test file was in the container
    solved_first_exec = fake.seen_files[2]
    assert solved_first_exec == {"/oracle/solution.sh"}
    assert fake.scripts[:3] == ["bash /tests/run-tests.sh", "bash /tests/run-tests.sh",
                                "bash /oracle/solution.sh"]
    # the test script went in sealed: its record line filled from the image's layers
    script = fake.containers_files[0]["/tests/run-tests.sh"].decode()
    assert "GEN_RECORD=  #" not in script and "GEN_PYTHON=/usr/bin/python3.11" in script
    boot = re.search(r"^GEN_BOOT='(.*?)'$", script, re.M | re.S)
    assert boot is not None and re.search(r"^[0-9a-f]{64}  /usr/bin/python3.11$", boot.group(1),
                                          re.M), script[:2000]
    report = json.loads((project / REPORT_FILE).read_text())
    assert report["ok"] is True and report["tasks"]["t"]["states"]["solved"]["summary"] == \
        "1/1 pass, 1/1 pass"


def test_cli_exit_codes_and_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    project = _project_with_image(tmp_path)

    def hangs(c: FakeContainer, script: str, timeout: float) -> ExecResult:
        if "solution.sh" in script:
            c.solved = True
            return ExecResult(0, "", 0.1)
        if c.solved:
            return ExecResult(None, "collecting ...", timeout, timed_out=True)
        return ExecResult(1, FAIL_LOG, 0.1)

    fake = FakeRunner(hangs)
    monkeypatch.setattr("generator.validate.project.get_runner", lambda name: fake)
    code = main(["validate", "--project", str(project), "--runs", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED  t [terminal]" in out
    assert "state 'solved' run 1: the tests ran past the task's test timeout (120s); the " \
           "container was killed" in out
    assert not fake.live
    code = main(["validate", "--project", str(project), "--runs", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["ok"] is False and data["exit_code"] == 1
    assert data["tasks"]["t"]["states"]["solved"]["runs"][0]["timed_out"] == "tests"
    fake.behaviour = _honest
    assert main(["validate", "--project", str(project), "--runs", "1"]) == 0


def test_missing_image_is_an_input_error(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = _rendered_terminal(tmp_path)
    assert main(["validate", "--project", str(project)]) == 2
    assert "no built image for task(s) t" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# runner plumbing
# --------------------------------------------------------------------------------------


def test_make_tar_has_parents_modes_and_fixed_times() -> None:
    from generator.validate.runner import make_tar

    data = make_tar({"/tests/run-tests.sh": (b"#!/bin/bash\n", 0o755),
                     "/tests/data/a.csv": (b"x\n", 0o644), "/oracle/solution.sh": (b"", 0o755)})
    assert make_tar({"/oracle/solution.sh": (b"", 0o755), "/tests/data/a.csv": (b"x\n", 0o644),
                     "/tests/run-tests.sh": (b"#!/bin/bash\n", 0o755)}) == data
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == ["oracle", "oracle/solution.sh", "tests", "tests/data",
                             "tests/data/a.csv", "tests/run-tests.sh"]
    assert members["tests"].isdir() and members["tests/run-tests.sh"].mode == 0o755
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


def test_unknown_engine_is_a_usage_error() -> None:
    from generator.core.errors import UsageError
    from generator.validate.runner import get_runner

    with pytest.raises(UsageError, match="unknown engine 'rkt'"):
        get_runner("rkt")
