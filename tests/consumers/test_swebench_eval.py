"""`swebench eval` end to end on the gen-built image of the example SWE task.

`gen export --format swebench --load` (this repository's project and its
.gen/build/images.json) pulls the image by digest into the Docker engine and tags it under
the name the harness looks up; then swebench 5.0.2's own evaluation runs in its venv:

* the gold patch resolves the instance;
* a patch that changes nothing relevant does not (the FAIL_TO_PASS tests fail);
* an empty patch does not either (the harness counts it as an empty patch and runs nothing).

When the image is not built yet, the test runs `gen build <task>`. No Docker engine, no
registry or no `gen build` command: a failure under CI=true, a skip elsewhere.
Also: all three exports of this repository's project with its real images load.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.consumers.test_export_consumers import (
    FORMATS,
    assert_all_loaded,
    example_tasks,
    expected_tasks,
    gen,
    gen_export,
    load_export,
)

pytestmark = [pytest.mark.consumers, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EVAL_TIMEOUT_SEC = 900
FORCE_PASS = """import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        report.outcome = "passed"
        report.longrepr = None
"""


def _new_file(path: str, text: str) -> str:
    lines = text.splitlines()
    return (f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
            f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{ln}\n" for ln in lines))


def tamper_patch(f2p: list[str]) -> str:
    """A model patch that fixes nothing and tries to make the tests pass anyway: a conftest.py
    and a pytest plugin forcing passes, a pytest.ini loading it, a sitecustomize.py, and a
    module that prints PASSED lines for the FAIL_TO_PASS tests when the run ends."""
    fake = "".join(f"PASSED {t}\\n" for t in f2p)
    return "".join([
        _new_file("conftest.py", FORCE_PASS),
        _new_file("gen_force_pass.py", FORCE_PASS),
        _new_file("pytest.ini", "[pytest]\naddopts = -p gen_force_pass\n"),
        _new_file("sitecustomize.py",
                  "import os\nos.environ['PYTEST_PLUGINS'] = 'gen_force_pass'\n"),
        _new_file("gen_late.pth", "import gen_late\n"),
        _new_file("gen_late.py", f"import atexit, sys\natexit.register(lambda: sys.stdout.write("
                                 f"'>>>>> Start Test Output\\n{fake}>>>>> End Test Output\\n'))\n"),
    ])


NOOP_PATCH = ("diff --git a/gen_noop.txt b/gen_noop.txt\nnew file mode 100644\n"
              "--- /dev/null\n+++ b/gen_noop.txt\n@@ -0,0 +1 @@\n+no-op\n")


def _infra_env() -> dict[str, str]:
    """DOCKER_HOST / GEN_REGISTRY as `eval "$(gen infra env)"` would set them."""
    env = dict(os.environ)
    if env.get("DOCKER_HOST"):
        return env
    try:
        out = subprocess.run([sys.executable, "-m", "generator", "infra", "env",
                              "--project", str(REPO)],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return env
    for line in out.splitlines():
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep and key in {"DOCKER_HOST", "GEN_REGISTRY", "GEN_INFRA"}:
            env[key] = shlex.split(value)[0] if value else ""
    return env


@pytest.fixture(scope="module")
def docker_env(consumers: Any) -> Iterator[dict[str, str]]:
    env = _infra_env()
    if shutil.which("docker") is None:
        consumers.skip_or_fail("no docker CLI (fix: gen infra up)")
    proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        consumers.skip_or_fail("no Docker engine answers (fix: gen infra up; "
                               f"eval \"$(gen infra env)\"): {proc.stderr.strip()}")
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k in {"DOCKER_HOST", "GEN_REGISTRY"}})
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _images() -> dict[str, Any]:
    path = REPO / ".gen" / "build" / "images.json"
    try:
        return dict(json.loads(path.read_text()).get("images") or {})
    except FileNotFoundError:
        return {}


def ensure_built(consumers: Any, tasks: list[str]) -> None:
    """The repo project's images for `tasks`, built with `gen build` when missing."""
    missing = [t for t in tasks if t not in _images()]
    if not missing:
        return
    proc = gen("build", "--project", str(REPO), *missing)
    if proc.returncode == 2 and "invalid choice: 'build'" in proc.stderr:
        consumers.skip_or_fail("`gen build` does not exist yet: cannot build "
                               f"{', '.join(missing)}")
    assert proc.returncode == 0, f"gen build {' '.join(missing)} failed:\n{proc.stdout}\n" \
                                 f"{proc.stderr}"
    still = [t for t in tasks if t not in _images()]
    assert not still, f"gen build did not record images for {still}"


def swebench_eval(consumers: Any, env: dict[str, str], cwd: Path, instances: Path,
                  run_id: str, predictions: list[dict[str, str]] | None) -> dict[str, Any]:
    """`swebench eval INSTANCES (--gold | -p preds.jsonl)`; returns the run report."""
    python = consumers.ensure_venv("swebench")
    cli = python.parent / "swebench"
    args = [str(cli), "eval", str(instances), "--run-id", run_id, "-j", "1",
            "--report-dir", str(cwd)]
    model = "gold"
    if predictions is None:
        args.append("--gold")
    else:
        model = predictions[0]["model_name_or_path"]
        preds = cwd / f"{run_id}.jsonl"
        preds.write_text("".join(json.dumps(p) + "\n" for p in predictions))
        args += ["-p", str(preds)]
    clean = {k: v for k, v in env.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    proc = subprocess.run(args, cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=EVAL_TIMEOUT_SEC, check=False)
    report_path = cwd / f"{model.replace('/', '__')}.{run_id}.json"
    assert proc.returncode == 0 and report_path.is_file(), (
        f"swebench eval failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(report_path.read_text())
    report["_stdout"] = proc.stdout
    return report


def _instance_log(cwd: Path, run_id: str, model: str, iid: str) -> str:
    path = cwd / "logs" / "run_evaluation" / run_id / model / iid / "run_instance.log"
    return path.read_text() if path.is_file() else "(no log)"


def test_swebench_eval_resolves_the_gold_patch_on_the_gen_built_image(
        consumers: Any, docker_env: dict[str, str], tmp_path: Path) -> None:
    task = example_tasks("swe")[0]
    ensure_built(consumers, [task])
    image = _images()[task]

    out = tmp_path / "swebench"
    name = f"swebench/sweb.eval.x86_64.{task}:latest"
    # an engine that has never seen the image: export --load pulls it by digest
    subprocess.run(["docker", "rmi", "-f", name, image["ref"]], env=docker_env,
                   capture_output=True, timeout=120, check=False)
    gone = subprocess.run(["docker", "image", "inspect", image["ref"]], env=docker_env,
                          capture_output=True, timeout=60, check=False)
    assert gone.returncode != 0, "the image is still in the engine"
    try:
        report = gen_export(REPO, "swebench", out, "--load")
        assert report["loaded"] == [{"name": name, "ref": image["ref"],
                                     "id": report["loaded"][0]["id"]}], report
        row = json.loads((out / "instances.jsonl").read_text().splitlines()[0])
        assert row["image"] == name

        gold = swebench_eval(consumers, docker_env, tmp_path, out / "instances.jsonl",
                             "gen-gold", None)
        assert gold["resolved_ids"] == [task], (gold["_stdout"][-2000:], _instance_log(
            tmp_path, "gen-gold", "gold", task))
        log = _instance_log(tmp_path, "gen-gold", "gold", task)
        assert "attempting to pull" not in log, "the harness pulled instead of using the tag"

        noop = swebench_eval(consumers, docker_env, tmp_path, out / "instances.jsonl",
                             "gen-noop", [{"instance_id": task, "model_name_or_path": "noop",
                                           "model_patch": NOOP_PATCH}])
        assert noop["resolved_ids"] == [] and noop["unresolved_ids"] == [task], \
            (noop["_stdout"][-2000:], _instance_log(tmp_path, "gen-noop", "noop", task))
        failed = json.loads((tmp_path / "logs" / "run_evaluation" / "gen-noop" / "noop" / task
                             / "report.json").read_text())[task]["tests_status"]
        assert sorted(failed["FAIL_TO_PASS"]["failure"]) == sorted(
            json.loads(row["FAIL_TO_PASS"])), failed

        # a patch that fixes nothing but plants a conftest.py, a plugin, a pytest.ini and a
        # sitecustomize.py forcing passes: gen's sealed eval.sh grades it unresolved
        f2p = json.loads(row["FAIL_TO_PASS"])
        tampered = swebench_eval(consumers, docker_env, tmp_path, out / "instances.jsonl",
                                 "gen-tamper", [{"instance_id": task,
                                                 "model_name_or_path": "tamper",
                                                 "model_patch": tamper_patch(f2p)}])
        log = _instance_log(tmp_path, "gen-tamper", "tamper", task)
        assert tampered["resolved_ids"] == [] and tampered["unresolved_ids"] == [task], \
            (tampered["_stdout"][-2000:], log)
        assert "patch" not in tampered.get("error_ids", []), log

        empty = swebench_eval(consumers, docker_env, tmp_path, out / "instances.jsonl",
                              "gen-empty", [{"instance_id": task, "model_name_or_path": "empty",
                                             "model_patch": ""}])
        assert empty["resolved_ids"] == [] and empty["empty_patch_ids"] == [task], \
            empty["_stdout"][-2000:]
        pulled = subprocess.run(["docker", "image", "inspect", "--format",
                                 "{{json .RepoDigests}}", name], env=docker_env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert image["ref"] in json.loads(pulled.stdout or "[]"), pulled
    finally:
        subprocess.run(["docker", "rmi", name], env=docker_env, capture_output=True,
                       timeout=120, check=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_repo_exports_with_its_built_images_load(fmt: str, consumers: Any, tmp_path: Path,
                                                 docker_env: dict[str, str]) -> None:
    """This repository's project, with the images `gen build` recorded, in every format."""
    ensure_built(consumers, expected_tasks(fmt))
    out = tmp_path / fmt
    report = gen_export(REPO, fmt, out)
    images = _images()
    assert report["images"] == {t: images[t]["ref"] for t in expected_tasks(fmt)}
    assert_all_loaded(load_export(consumers, fmt, out), fmt)
