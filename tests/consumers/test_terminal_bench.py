"""gen's Terminal-Bench tasks, loaded by terminal-bench 0.2.18's own code (tb_load.py).

The venv comes from `scripts/consumers.py setup tb` (run here if it is missing; a setup
failure fails the test in CI and skips it elsewhere). The harness is proven on hand-written
sample tasks, in the shape gen renders; the rendered dataset/ is checked when it exists.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from generator.render.pipeline import render

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.consumers


def _rendered_dataset(consumers: Any) -> Path:
    """The repository's rendered dataset/ (committed, so a fresh clone has it); if it is not
    there (GEN_CONSUMERS_DATASET names a missing dir, or dataset/ was deleted), the example is
    rendered into a temporary directory instead of the test skipping."""
    ds = Path(consumers.dataset_dir())
    if not ds.is_dir() or not any(p.is_dir() for p in ds.iterdir()):
        ds = Path(tempfile.mkdtemp(prefix="gen-dataset-")) / "dataset"
        render(REPO, ds, use_cache=False)
    return ds


@pytest.fixture(scope="session")
def gen_rendered(tmp_path_factory: pytest.TempPathFactory, consumers: Any) -> Path:
    """gen's own render output for the demo project (tests/helpers.py), rendered once."""
    return Path(consumers.gen_render_demo(tmp_path_factory.mktemp("gen-render")))


def _remove_key(task_yaml: Path, key: str) -> None:
    text = task_yaml.read_text()
    new, n = re.subn(rf"^{re.escape(key)}:.*\n", "", text, flags=re.M)
    assert n == 1, f"expected exactly one top-level {key}: line in {task_yaml}:\n{text}"
    task_yaml.write_text(new)


def test_sample_tasks_load(tmp_path: Path, consumers: Any) -> None:
    ds = tmp_path / "dataset"
    consumers.write_tb_task(ds, "hello-sh")
    # solution.yaml instead of solution.sh (OracleAgent parses it as TerminalCommands)
    yml = consumers.write_tb_task(ds, "hello-yaml", instruction="Say hello from /app.\n")
    (yml / "solution.sh").unlink()
    (yml / "solution.yaml").write_text(
        "- command: echo \"print('hello')\" > /app/hello.py\n  min_timeout_sec: 0.1\n")
    # the smallest task.yaml tb accepts: instruction + difficulty, everything else defaulted
    minimal = consumers.write_tb_task(ds, "minimal", instruction="Minimal task.\n")
    (minimal / "task.yaml").write_text("instruction: Minimal task.\ndifficulty: unknown\n")

    res = consumers.run_loader("tb", ds)

    assert res.returncode == 0, res.explain()
    assert res.report["rejected"] == [], res.explain()
    assert res.report["loaded"] == ["hello-sh", "hello-yaml", "minimal"], res.explain()
    assert res.report["skipped"] == []
    assert res.report["terminal_bench"] == "0.2.18"


def test_exclude_is_reported_as_skipped(tmp_path: Path, consumers: Any) -> None:
    ds = tmp_path / "dataset"
    consumers.write_tb_task(ds, "keep-me")
    consumers.write_tb_task(ds, "drop-me", instruction="Another task.\n")

    res = consumers.run_loader("tb", ds, "--exclude-task-id", "drop-*")

    assert res.returncode == 0, res.explain()
    assert res.report["loaded"] == ["keep-me"]
    assert res.report["skipped"] == ["drop-me"]


# (task id, how to break it, a piece of the expected error)
BREAKAGES: list[tuple[str, str, str]] = [
    ("no-difficulty", "task.yaml without difficulty", "difficulty"),
    ("bad-difficulty", "difficulty: trivial", "difficulty"),
    ("bad-parser", "parser_name: junit", "parser_name"),
    ("no-instruction", "task.yaml without instruction", "instruction"),
    ("bad-timeout", "max_test_timeout_sec: soon", "max_test_timeout_sec"),
    ("no-compose", "docker-compose.yaml deleted", "docker-compose.yaml is missing"),
    ("no-container-name", "compose without container_name", "container_name"),
    ("no-test-dir", "compose without environment", "TEST_DIR"),
    ("no-dockerfile", "Dockerfile deleted", "Dockerfile"),
    ("no-run-tests", "run-tests.sh deleted", "run-tests.sh"),
    ("no-solution", "solution.sh deleted", "solution"),
    ("bad-solution-yaml", "solution.yaml that is not a command list", "solution"),
    ("Upper-Case", "an uppercase task id", "compose project name"),
    ("same-instruction-b", "the instruction of same-instruction-a", "same instruction"),
    ("manifest.json", "a file at the dataset root", "NotADirectoryError"),
]


def _break(consumers: Any, ds: Path, task_id: str) -> None:
    if task_id == "manifest.json":
        (ds / task_id).write_text("{}\n")
        return
    instruction = f"Task {task_id}: fix /app/hello.py.\n"
    if task_id == "same-instruction-b":
        instruction = "Task same-instruction-a: fix /app/hello.py.\n"
    task = consumers.write_tb_task(ds, task_id, instruction=instruction)
    compose = task / "docker-compose.yaml"
    edits = {
        "no-difficulty": lambda: _remove_key(task / "task.yaml", "difficulty"),
        "bad-difficulty": lambda: consumers.write_files(task, {"task.yaml": consumers.tb_task_files(
            instruction, difficulty="trivial")["task.yaml"]}),
        "bad-parser": lambda: consumers.write_files(task, {"task.yaml": consumers.tb_task_files(
            instruction, parser_name="junit")["task.yaml"]}),
        "no-instruction": lambda: consumers.write_files(task, {"task.yaml": consumers.tb_task_files(
            None)["task.yaml"]}),
        "bad-timeout": lambda: consumers.write_files(task, {"task.yaml": consumers.tb_task_files(
            instruction, max_test_timeout_sec="soon")["task.yaml"]}),
        "no-compose": compose.unlink,
        "no-container-name": lambda: compose.write_text(
            re.sub(r"^ *container_name:.*\n", "", compose.read_text(), flags=re.M)),
        "no-test-dir": lambda: compose.write_text(
            re.sub(r"^ *environment:\n *- TEST_DIR=.*\n", "", compose.read_text(), flags=re.M)),
        "no-dockerfile": (task / "Dockerfile").unlink,
        "no-run-tests": (task / "run-tests.sh").unlink,
        "no-solution": (task / "solution.sh").unlink,
        "bad-solution-yaml": lambda: ((task / "solution.sh").unlink(),
                                      (task / "solution.yaml").write_text("command: ls\n")),
    }
    if task_id in edits:
        edits[task_id]()


def test_broken_tasks_are_rejected(tmp_path: Path, consumers: Any) -> None:
    ds = tmp_path / "dataset"
    consumers.write_tb_task(ds, "good")
    consumers.write_tb_task(ds, "same-instruction-a",
                            instruction="Task same-instruction-a: fix /app/hello.py.\n")
    for task_id, _, _ in BREAKAGES:
        _break(consumers, ds, task_id)

    res = consumers.run_loader("tb", ds)

    assert res.returncode == 1, res.explain()
    assert sorted(res.report["loaded"]) == ["good", "same-instruction-a"], res.explain()
    rejected = res.rejected
    for task_id, how, expected in BREAKAGES:
        assert task_id in rejected, f"{how}: not rejected\n{res.explain()}"
        assert expected in rejected[task_id], f"{how}: {rejected[task_id]!r}"
    assert set(rejected) == {t for t, _, _ in BREAKAGES}, res.explain()


def test_gen_render_output_loads(gen_rendered: Path, consumers: Any) -> None:
    """What `gen render` writes today (a terminal and a swe task) loads in tb."""
    task_dirs = sorted(p.name for p in gen_rendered.iterdir() if p.is_dir())
    assert task_dirs, f"gen render wrote no task into {gen_rendered}"

    res = consumers.run_loader("tb", gen_rendered)

    assert res.returncode == 0, res.explain()
    assert res.report["loaded"] == task_dirs, res.explain()


def test_gen_init_task_loads(tmp_path: Path, consumers: Any) -> None:
    """The task `gen init` scaffolds, once locked (synthetic pins) and rendered, loads in tb."""
    repo = Path(__file__).resolve().parents[2]
    project, out = tmp_path / "project", tmp_path / "dataset"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])}
    lock = ("import sys, yaml; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
            "from helpers import write_locks; p = Path(sys.argv[2]); "
            "write_locks(p, {'hello-world': yaml.safe_load("
            "(p / 'tasks/hello-world/task.spec.yaml').read_text())}, "
            "yaml.safe_load((p / 'gen.yaml').read_text()))")
    for argv in ([sys.executable, "-m", "generator", "init", "--project", str(project)],
                 [sys.executable, "-c", lock, str(repo / "tests"), str(project)],
                 [sys.executable, "-m", "generator", "render", "--project", str(project),
                  "--out", str(out)]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=300, check=False)
        assert proc.returncode == 0, f"{argv[1:4]}: {proc.stdout}\n{proc.stderr}"

    res = consumers.run_loader("tb", out)

    assert res.returncode == 0, res.explain()
    assert res.report["loaded"] == ["hello-world"], res.explain()


@pytest.mark.parametrize("source", ["sample", "gen-render", "dataset"])
def test_task_without_difficulty_is_rejected(tmp_path: Path, consumers: Any, source: str,
                                              request: pytest.FixtureRequest) -> None:
    """The check can fail: a task (hand-written, rendered by gen, or from dataset/) whose
    task.yaml lacks `difficulty` is rejected."""
    ds = tmp_path / "dataset"
    if source == "sample":
        task = consumers.write_tb_task(ds, "hello")
    else:
        rendered = (request.getfixturevalue("gen_rendered") if source == "gen-render"
                    else _rendered_dataset(consumers))
        task_src = sorted(p for p in rendered.iterdir() if p.is_dir())[0]
        task = ds / task_src.name
        shutil.copytree(task_src, task, symlinks=True)
    _remove_key(task / "task.yaml", "difficulty")

    res = consumers.run_loader("tb", ds)

    assert res.returncode == 1, res.explain()
    assert res.report["loaded"] == []
    assert list(res.rejected) == [task.name], res.explain()
    error = res.rejected[task.name]
    assert "difficulty" in error and "Field required" in error, error


def test_rendered_dataset_loads(consumers: Any) -> None:
    """Every task gen rendered into dataset/ loads exactly as `tb run --dataset-path` would."""
    ds = _rendered_dataset(consumers)
    task_dirs = sorted(p.name for p in ds.iterdir() if p.is_dir())

    res = consumers.run_loader("tb", ds)

    assert res.report.get("rejected") == [], res.explain()
    assert res.returncode == 0, res.explain()
    assert sorted(res.report["loaded"]) == task_dirs, json.dumps(res.report, indent=2)
