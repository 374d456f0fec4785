"""Shared helpers for the consumer tests: venvs, loader runs, hand-written sample tasks.

The loaders (tb_load.py, harbor_load.py, swebench_load.py) run in the consumers' own venvs,
made by `scripts/consumers.py setup NAME` (venvs.py here, pins in scripts/constraints/) under
${GEN_STATE:-<repo>/.gen}/venvs. A test that needs a venv that is missing runs the setup; if
that fails, the test FAILS in CI (CI=true) and is skipped elsewhere.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CONSUMERS_PY = REPO / "scripts" / "consumers.py"
STATE = Path(os.environ.get("GEN_STATE") or REPO / ".gen").resolve()
VENVS = STATE / "venvs"
SETUP_TIMEOUT_SEC = 1800
LOAD_TIMEOUT_SEC = 600

LOADERS = {"tb": "tb_load.py", "harbor": "harbor_load.py", "swebench": "swebench_load.py"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def dataset_dir() -> Path:
    """The rendered dataset the tests load (GEN_CONSUMERS_DATASET overrides <repo>/dataset)."""
    return Path(os.environ.get("GEN_CONSUMERS_DATASET") or REPO / "dataset")


def skip_or_fail(reason: str) -> None:
    """Missing prerequisites: a failure in CI, a skip on a developer's machine."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


_SETUP_ERRORS: dict[str, str] = {}


def _venvs_module() -> Any:
    """tests/consumers/venvs.py, loaded by path (this folder is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_consumer_venvs", HERE / "venvs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VENVS_MODULE = _venvs_module()


@functools.cache
def ensure_venv(name: str) -> Path:
    """The python of consumer venv NAME, running `consumers.py setup NAME` if it is missing
    (or older than venvs.py or its constraints file, whose pins may have changed; setup is a
    no-op if not). Runs setup at most once per test session and venv."""
    if name in _SETUP_ERRORS:
        skip_or_fail(_SETUP_ERRORS[name])
    python = VENVS / name / "bin" / "python"
    stamp = VENVS / name / VENVS_MODULE.STAMP
    recipe_mtime = max(p.stat().st_mtime for p in VENVS_MODULE.recipe_files(name))
    if python.exists() and stamp.exists() and stamp.stat().st_mtime >= recipe_mtime:
        return python
    try:
        proc = subprocess.run(
            [sys.executable, str(CONSUMERS_PY), "setup", name],
            capture_output=True, text=True, timeout=SETUP_TIMEOUT_SEC, check=False,
            env={**os.environ, "GEN_STATE": str(STATE)},
        )
    except subprocess.TimeoutExpired:
        _SETUP_ERRORS[name] = f"scripts/consumers.py setup {name} timed out after " \
                              f"{SETUP_TIMEOUT_SEC}s"
    else:
        if proc.returncode != 0 or not python.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            _SETUP_ERRORS[name] = (f"scripts/consumers.py setup {name} failed "
                                   f"(rc={proc.returncode}):\n{tail}")
    if name in _SETUP_ERRORS:
        skip_or_fail(_SETUP_ERRORS[name])
    return python


@dataclass
class LoadResult:
    returncode: int
    report: dict[str, Any]
    stderr: str

    @property
    def rejected(self) -> dict[str, str]:
        return {r["task"]: r["error"] for r in self.report.get("rejected", [])}

    def explain(self) -> str:
        return (f"rc={self.returncode}\nreport={json.dumps(self.report, indent=2)}\n"
                f"stderr (tail)=\n" + "\n".join(self.stderr.splitlines()[-30:]))


def run_loader(name: str, target: Path, *args: str) -> LoadResult:
    """Run LOADERS[name] on target in venv NAME; parse its JSON report."""
    python = ensure_venv(name)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    proc = subprocess.run(
        [str(python), str(HERE / LOADERS[name]), str(target), *args],
        capture_output=True, text=True, timeout=LOAD_TIMEOUT_SEC, check=False, env=env,
        cwd=target.parent,
    )
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        report = {"unparsed_stdout": proc.stdout}
    return LoadResult(proc.returncode, report, proc.stderr)


# ------------------------------------------------------------------------------------------
# Hand-written samples, in the shape gen renders (generator/templates/)
# ------------------------------------------------------------------------------------------

def write_files(root: Path, files: dict[str, str | tuple[str, int]]) -> None:
    for rel, content in files.items():
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)


TB_COMPOSE = """\
services:
  client:
    build:
      context: .
      dockerfile: Dockerfile
    image: ${T_BENCH_TASK_DOCKER_CLIENT_IMAGE_NAME}
    container_name: ${T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME}
    command: ["sh", "-c", "sleep infinity"]
    environment:
      - TEST_DIR=${T_BENCH_TEST_DIR}
    volumes:
      - ${T_BENCH_TASK_LOGS_PATH}:${T_BENCH_CONTAINER_LOGS_PATH}
      - ${T_BENCH_TASK_AGENT_LOGS_PATH}:${T_BENCH_CONTAINER_AGENT_LOGS_PATH}
"""


def tb_task_files(instruction: str | None = "Fix the script /app/hello.py so it prints 'hello'.\n",
                  **task_yaml: Any) -> dict[str, str | tuple[str, int]]:
    """A complete Terminal-Bench (tb 0.2.x) task: every file tb's loader and harness read.

    task.yaml keys given as None (instruction too) are left out.
    """
    fields: dict[str, Any] = {
        "author_name": "gen maintainers",
        "author_email": "gen@example.invalid",
        "difficulty": "easy",
        "category": "software_engineering",
        "tags": ["python"],
        "parser_name": "pytest",
        "max_agent_timeout_sec": 600,
        "max_test_timeout_sec": 120,
        "run_tests_in_same_shell": False,
        "disable_asciinema": True,
    }
    fields.update(task_yaml)
    lines = [] if instruction is None else [
        "instruction: |-", textwrap.indent(instruction.rstrip("\n"), "  ")]
    lines += [f"{k}: {json.dumps(v)}" for k, v in fields.items() if v is not None]
    return {
        "task.yaml": "\n".join(lines) + "\n",
        "docker-compose.yaml": TB_COMPOSE,
        "Dockerfile": textwrap.dedent("""\
            FROM debian:bookworm
            RUN apt-get update && apt-get install -y --no-install-recommends \\
                tmux python3 python3-pytest && rm -rf /var/lib/apt/lists/*
            WORKDIR /app
            COPY files/app/hello.py /app/hello.py
            """),
        "files/app/hello.py": "print('helo')\n",
        "run-tests.sh": (textwrap.dedent("""\
            #!/bin/bash
            set -u
            TEST_DIR="${TEST_DIR:-/tests}"
            cd /app
            python3 -m pytest -rA "$TEST_DIR/test_outputs.py"
            """), 0o755),
        "solution.sh": ("#!/bin/bash\necho \"print('hello')\" > /app/hello.py\n", 0o755),
        "tests/test_outputs.py": textwrap.dedent("""\
            import subprocess


            def test_hello():
                out = subprocess.run(["python3", "/app/hello.py"], capture_output=True, text=True)
                assert out.stdout == "hello\\n"
            """),
    }


def write_tb_task(dataset: Path, task_id: str, **kw: Any) -> Path:
    task_dir = dataset / task_id
    write_files(task_dir, tb_task_files(**kw))
    return task_dir


def harbor_task_files(*, name: str = "gen/hello") -> dict[str, str | tuple[str, int]]:
    """A Harbor (TB 2.0) task: separate verifier with bundled tests, as `harbor tasks init`."""
    return {
        "task.toml": textwrap.dedent(f"""\
            schema_version = "1.4"

            [task]
            name = "{name}"
            description = "Fix hello.py"

            [metadata]
            difficulty = "easy"
            category = "software_engineering"
            tags = ["python"]

            [agent]
            timeout_sec = 600.0

            [verifier]
            timeout_sec = 120.0
            environment_mode = "separate"

            [environment]
            build_timeout_sec = 600.0
            """),
        "instruction.md": "Fix the script /app/hello.py so it prints 'hello'.\n",
        "environment/Dockerfile": "FROM debian:bookworm\nWORKDIR /app\n"
                                  "RUN echo \"print('helo')\" > /app/hello.py\n",
        "tests/Dockerfile": "FROM debian:bookworm\nCOPY . /tests/\n",
        "tests/test.sh": ("#!/bin/bash\nmkdir -p /logs/verifier\n"
                          "if [ \"$(python3 /app/hello.py)\" = hello ]; then r=1; else r=0; fi\n"
                          "echo $r > /logs/verifier/reward.txt\n", 0o755),
        "solution/solve.sh": ("#!/bin/bash\necho \"print('hello')\" > /app/hello.py\n", 0o755),
    }


SWE_EVAL_SCRIPT = textwrap.dedent("""\
    #!/bin/bash
    set -uxo pipefail
    cd /testbed
    git checkout aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa tests/test_calc.py
    git apply -v - <<'EOF_114329324912'
    diff --git a/tests/test_calc.py b/tests/test_calc.py
    --- a/tests/test_calc.py
    +++ b/tests/test_calc.py
    @@ -1,2 +1,4 @@
     def test_one():
         assert True
    +def test_add():
    +    assert __import__('calc').add(1, 2) == 3
    EOF_114329324912
    : '>>>>> Start Test Output'
    pytest -rA tests/test_calc.py
    : '>>>>> End Test Output'
    git checkout aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa tests/test_calc.py
    """)


def swebench_instance(**over: Any) -> dict[str, Any]:
    """A SWE-bench 5.x instance: the fields 5.0.2's harness reads (and the classic ones)."""
    inst: dict[str, Any] = {
        "instance_id": "demo__calc-1",
        "repo": "demo/calc",
        "version": "0.1",
        "base_commit": "a" * 40,
        "problem_statement": "add() subtracts instead of adding.\n",
        "hints_text": "",
        "created_at": "2023-11-14T22:13:20Z",
        "environment_setup_commit": "a" * 40,
        "patch": ("diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
                  "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"),
        "test_patch": ("diff --git a/tests/test_calc.py b/tests/test_calc.py\n"
                       "--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n"
                       "@@ -1,2 +1,4 @@\n def test_one():\n     assert True\n"
                       "+def test_add():\n+    assert __import__('calc').add(1, 2) == 3\n"),
        "FAIL_TO_PASS": json.dumps(["tests/test_calc.py::test_add"]),
        "PASS_TO_PASS": json.dumps(["tests/test_calc.py::test_one"]),
        "image": "swebench/sweb.eval.x86_64.demo_1776_calc-1:latest",
        "eval_script": SWE_EVAL_SCRIPT,
        "log_parser": "parse_log_pytest",
        "eval_type": "pass_and_fail",
    }
    inst.update(over)
    return inst


def gen_render_demo(root: Path) -> Path:
    """Render tests/helpers.demo_project (a terminal and a swe task) with `gen render`.

    Both steps run in subprocesses with the repo on PYTHONPATH, so this works whether or not
    gen is installed in the test interpreter. Returns the rendered dataset folder.
    """
    project, out = root / "project", root / "dataset"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    build = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
             "from helpers import demo_project; demo_project(Path(sys.argv[2]))")
    for argv in ([sys.executable, "-c", build, str(REPO / "tests"), str(project)],
                 [sys.executable, "-m", "generator", "render", "--project", str(project),
                  "--out", str(out)]):
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=root,
                              timeout=300, check=False)
        assert proc.returncode == 0, (
            f"{argv[1:4]} failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return path


# This module object, taken while it is being imported: every conftest.py is imported as
# "conftest", so sys.modules["conftest"] may later be another folder's.
_THIS_MODULE = sys.modules[__name__]


@pytest.fixture(scope="session")
def consumers() -> Any:
    """This module, so tests can use its helpers without importing a conftest by name."""
    return _THIS_MODULE
