"""`gen validate` against real engines: the example dataset validates, and deliberately broken
tasks are each caught with a clear reason."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.image.build import build_project, project_engine
from generator.image.images import BuiltImage, load_images, save_images
from generator.lock.fetch import fetch_project
from generator.render.pipeline import render
from generator.validate.runner import get_runner
from generator.validate.spec_edit import replace_spec_lists
from tests.helpers import build_project as make_project
from tests.helpers import terminal_spec
from tests.integration.conftest import REPO, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE_TASKS = ("csv-stats-cli", "fix-log-parser", "inflection-humanize-id-suffix")
SWE = "inflection-humanize-id-suffix"


def _engine(name: str) -> None:
    why = get_runner(name).available()
    need(why is None, f"engine {name} cannot run containers: {why}")


def _validate(project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_gen("validate", "--project", str(project), "--json", *args)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON report: {proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, data, proc.stderr


def _leftovers(engine: str, session: str) -> list[str]:
    prog = "/usr/bin/docker" if engine == "docker" else "podman"
    out = subprocess.run([prog, "ps", "-a", "-q", "--filter",
                          f"label=gen.validate.session={session}"],
                         capture_output=True, text=True, check=False).stdout
    return out.split()


# --------------------------------------------------------------------------------------
# the example dataset
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("engine", "runs"), [("docker", "3"), ("podman", "1")])
def test_example_dataset_validates(example: Path, engine: str, runs: str) -> None:
    _engine(engine)
    code, report, err = _validate(example, "--engine", engine, "--runs", runs, "--jobs", "2")
    problems = {t: v["problems"] for t, v in report.get("tasks", {}).items() if not v["ok"]}
    assert code == 0 and report["ok"] is True, (problems, err)
    assert report["engine"].startswith(engine) and report["runs"] == int(runs)
    assert set(report["tasks"]) == set(EXAMPLE_TASKS)
    swe = report["tasks"][SWE]
    f2p = [t for t, r in swe["tests"].items() if r["role"] == "FAIL_TO_PASS"]
    assert len(f2p) == 2 and all(swe["tests"][t]["observed"]["test_patch"] == ["FAILED"] *
                                 int(runs) for t in f2p)
    for t in ("csv-stats-cli", "fix-log-parser"):
        states = report["tasks"][t]["states"]
        assert len(states["unsolved"]["runs"]) == int(runs)
        assert all(c["ok"] for c in report["tasks"][t]["checks"].values())
    assert report["leftover_containers"] == [] and _leftovers(engine, report["session"]) == []
    saved = json.loads((example / ".gen/validate/report.json").read_text())
    assert saved["ok"] is True and saved["session"] == report["session"]


def test_derive_reproduces_the_swe_lists(example: Path) -> None:
    _engine("docker")
    spec = example / "tasks" / SWE / "task.spec.yaml"
    original = spec.read_text()
    declared = yaml.safe_load(original)
    spec.write_text(replace_spec_lists(original, {"FAIL_TO_PASS": [], "PASS_TO_PASS": []}))
    code, report, err = _validate(example, "--derive", "--runs", "2", SWE)
    assert code == 0, (report["tasks"][SWE]["problems"], err)
    got = yaml.safe_load(spec.read_text())
    assert got["FAIL_TO_PASS"] == declared["FAIL_TO_PASS"]
    # every declared PASS_TO_PASS test is derived (SWE-bench derives every test passing in both
    # states; the example declares a subset of them)
    assert set(declared["PASS_TO_PASS"]) <= set(got["PASS_TO_PASS"])
    assert not set(got["PASS_TO_PASS"]) & set(got["FAIL_TO_PASS"])
    assert report["tasks"][SWE]["derived"]["FAIL_TO_PASS"] == declared["FAIL_TO_PASS"]
    assert report["tasks"][SWE]["spec_written"] is True
    # only the two lists changed: put the declared ones back and the file is byte-identical
    assert replace_spec_lists(spec.read_text(), {
        "FAIL_TO_PASS": declared["FAIL_TO_PASS"],
        "PASS_TO_PASS": declared["PASS_TO_PASS"]}) == original
    # deriving again observes the same lists: the spec is not rewritten
    code, report, _ = _validate(example, "--derive", "--runs", "1", SWE)
    assert code == 0 and report["tasks"][SWE]["spec_written"] is False


def test_gold_patch_editing_a_test_file_is_caught(example: Path) -> None:
    _engine("docker")
    gold = example / "tasks" / SWE / "gold.patch"
    gold.write_text(gold.read_text() + (
        "diff --git a/test_helpers.py b/test_helpers.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/test_helpers.py\n@@ -0,0 +1 @@\n+HELPER = 1\n"))
    render(example)
    code, report, _ = _validate(example, "--runs", "1", SWE)
    task = report["tasks"][SWE]
    assert code == 1 and not task["ok"]
    assert task["problems"] == [
        "anti-cheat: the gold patch (gold.patch) edits test file(s) test_helpers.py; the fix "
        "must not change tests (move them to test.patch)"]
    assert task["checks"]["patches_split_tests_from_fix"]["ok"] is False


# --------------------------------------------------------------------------------------
# deliberately broken terminal tasks
# --------------------------------------------------------------------------------------

SOLUTION = "#!/bin/bash\necho hello > /app/hello.txt\n"
HELLO_TEST = "def test_hello():\n    assert open('/app/hello.txt').read() == 'hello\\n'\n"
BAKED_TEMPLATE = """{% import "_macros.j2" as m with context -%}
{{ m.preamble() }}
{{ m.install_locked() }}
WORKDIR /app
COPY files/app/hello.py /app/hello.py
RUN mkdir -p /opt/notes \\
 && printf '#!/bin/bash\\necho hello > /app/hello.txt\\n' > /opt/notes/solution.txt
"""

BROKEN: dict[str, dict[str, Any]] = {
    "good": {},
    "already-passes": {"tests/test_outputs.py": "def test_app():\n    assert open('/app/hello.py')"
                       ".read()\n"},
    "fails-with-fix": {"solution.sh": ("#!/bin/bash\necho helo > /app/hello.txt\n", 0o755)},
    "flaky": {"tests/test_outputs.py": HELLO_TEST + (
        "import random\nimport pytest\n\n\n@pytest.mark.parametrize('i', range(24))\n"
        "def test_coin(i):\n    assert random.random() < 0.5  # no seed: differs every run\n")},
    "needs-network": {"tests/test_outputs.py": HELLO_TEST + (
        "import socket\n\n\ndef test_fetch():\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=5).close()\n")},
    "hangs": {"tests/test_outputs.py": HELLO_TEST.replace(
        "def test_hello():\n", "import time\n\n\ndef test_hello():\n") + "    time.sleep(3600)\n"},
    "baked-solution": {"templates/Dockerfile.j2": BAKED_TEMPLATE},
}


@pytest.fixture(scope="module")
def broken(base_image: str, gen_cas: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = yaml.safe_load((REPO / "gen.yaml").read_text())
    config.update(name="gen-validate-broken", registry="127.0.0.1:5000/gen-validate-broken")
    config.pop("strength", None)  # soundness only here (no coverage.py lock is copied)
    tasks: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for task_id, extra in BROKEN.items():
        spec = terminal_spec(environment={"apt": ["python3", "python3-pytest"]})
        if task_id == "hangs":
            spec["timeouts"] = {"test_sec": 10}
        files: dict[str, Any] = {"app/hello.py": "print('helo')\n", "tests/test_outputs.py":
                                 HELLO_TEST, "solution.sh": (SOLUTION, 0o755)}
        tasks[task_id] = (spec, {**files, **extra})
    project = make_project(tmp_path_factory.mktemp("broken") / "p", tasks, config=config,
                           locks=False)
    # same base and packages as the example's fix-log-parser: its locks pin these tasks too
    (project / "lockfiles").mkdir()
    shutil.copy2(REPO / "lockfiles/images.lock", project / "lockfiles/images.lock")
    shutil.copytree(REPO / "lockfiles/bases", project / "lockfiles/bases")  # gen.yaml's base
    for task_id in BROKEN:
        (project / "lockfiles/tasks" / task_id).mkdir(parents=True)
        shutil.copy2(REPO / "lockfiles/tasks/fix-log-parser/apt.lock",
                     project / "lockfiles/tasks" / task_id / "apt.lock")
    render(project)
    fetch_project(project)
    # one image for every task whose breakage is in its tests or solution (never in the
    # image), and the image with the baked-in solution
    build_project(project, only=["good", "baked-solution"],
                  engine=project_engine(project, "buildah"))
    images = load_images(project)
    save_images(project, {**{t: BuiltImage(**{**images["good"].__dict__, "task": t})
                             for t in BROKEN}, "baked-solution": images["baked-solution"]})
    return project


def test_broken_tasks_are_caught_with_a_reason(broken: Path) -> None:
    _engine("docker")
    code, report, err = _validate(broken, "--runs", "3", "--jobs", "2")
    assert code == 1, err
    tasks = report["tasks"]
    assert tasks["good"]["ok"], tasks["good"]["problems"]

    def reasons(task: str) -> str:
        assert not tasks[task]["ok"], f"{task} should fail validation"
        return "\n".join(tasks[task]["problems"])

    assert reasons("already-passes") == (
        "state 'unsolved' run 1: the tests already pass without the fix (all 1 tests passed: "
        "expected at least one to fail)")
    assert reasons("fails-with-fix") == (
        "state 'solved' runs 1, 2, 3: test test_outputs.py::test_hello fails even with "
        "the fix: expected PASSED, observed FAILED")
    flaky = reasons("flaky")
    assert "flaky: test test_outputs.py::test_coin[" in flaky
    # (a coin that happened to fail in every solved run is also reported as failing there)
    assert all("test test_outputs.py::test_coin[" in p
               for p in tasks["flaky"]["problems"])
    assert tasks["flaky"]["flaky"] and report["summary"]["flaky"] == ["flaky"]
    net = reasons("needs-network")
    assert "test test_outputs.py::test_fetch fails even with the fix" in net
    assert "network error: 'Network is unreachable'" in net
    hang = reasons("hangs")
    assert "state 'solved' run 1: the tests ran past the task's test timeout (10s); the " \
           "container was killed" in hang
    assert all(r["timed_out"] == "tests" for r in tasks["hangs"]["states"]["solved"]["runs"])
    baked = reasons("baked-solution")
    assert "anti-cheat: the agent image contains /opt/notes/solution.txt" in baked
    assert "identical to solution" in baked
    assert tasks["baked-solution"]["checks"]["image_has_no_tests_or_solution"]["ok"] is False
    # nothing is left running, the hung containers included
    assert report["leftover_containers"] == [] and _leftovers("docker", report["session"]) == []


def test_text_report_names_test_state_and_expectation(broken: Path) -> None:
    _engine("docker")
    proc = run_gen("validate", "--project", str(broken), "--runs", "1", "fails-with-fix",
                   "good")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "ok      good [terminal] unsolved: 0/1 pass; solved: 1/1 pass" in out
    assert "FAILED  fails-with-fix [terminal]" in out
    assert ("    - state 'solved' run 1: test test_outputs.py::test_hello fails even "
            "with the fix: expected PASSED, observed FAILED") in out
    assert "    BAD test_outputs.py::test_hello [other]: unsolved FAILED | solved " \
           "FAILED" in out
    assert "validate: 1 of 2 tasks valid, 1 failed" in out


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_copying_files_in_leaves_no_temp_files(example_images: dict[str, BuiltImage],
                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               engine: str) -> None:
    """podman 4.3 spools a `cp -` stream into $TMPDIR and never deletes it (podman #19496):
    validate copies tests in several times per task, so that would fill /var/tmp."""
    from generator.validate.runner import ContainerSpec

    _engine(engine)
    spool = tmp_path / "tmpdir"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))  # where the engine's CLI would leave them
    runner = get_runner(engine)
    image = example_images["fix-log-parser"]
    ref = runner.ensure_image(image.ref, Path(image.layout), "fix-log-parser")
    container = runner.start(ref, ContainerSpec(env={}, memory_mb=512, cpus=1.0,
                                                lifetime_sec=120, labels={"gen.test": "cp"}))
    try:
        for i in range(3):
            container.put_files({f"/tmp/gen-cp/{i}.txt": (b"x\n", 0o644)})
        result = container.exec("cat /tmp/gen-cp/0.txt /tmp/gen-cp/2.txt", timeout=60)
        assert result.exit_code == 0 and result.output == "x\nx\n", result
    finally:
        container.remove()
    assert sorted(p.name for p in spool.iterdir()) == []
