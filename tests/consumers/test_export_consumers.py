"""`gen export` output, loaded by the consumers' own code.

The example dataset (this repository's tasks, copied into a temp project) is exported in all
three formats, with a synthetic images.json (built images by digest) and without one, and
each export is loaded in the consumer's own venv:

* tb: `tb_load.py` (`Dataset`, `TrialHandler`, compose checks): zero rejections;
* harbor: `harbor_load.py --lint` (`Task()`, `DatasetConfig` which drops invalid tasks
  silently, and `harbor lint` with the CLI's rule selection): zero rejections, zero drops;
* swebench: `swebench_load.py --task-repo` (`load_swebench_dataset`, `make_test_spec`,
  grading-time checks, `swebench dataset check`, `load_task_repo`): zero rejections.

The loaders are also shown to fail on broken exports. The end-to-end SWE-bench evaluation
on the gen-built image is in test_swebench_eval.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.consumers

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("tb", "harbor", "swebench")


def gen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True,
                          text=True, env=env, cwd=cwd or REPO, timeout=600, check=False)


def gen_export(project: Path, fmt: str, out: Path, *extra: str) -> dict[str, Any]:
    proc = gen("export", "--project", str(project), "--format", fmt, "--out", str(out),
               "--json", *extra)
    assert proc.returncode == 0, f"gen export failed:\n{proc.stdout}\n{proc.stderr}"
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def copy_example_project(dst: Path) -> Path:
    """The inputs of this repository's dataset project (no .gen/, no dataset/)."""
    dst.mkdir(parents=True)
    shutil.copy2(REPO / "gen.yaml", dst / "gen.yaml")
    for sub in ("tasks", "lockfiles", "templates"):
        if (REPO / sub).is_dir():
            shutil.copytree(REPO / sub, dst / sub, symlinks=True)
    return dst


def example_tasks(kind: str | None = None) -> list[str]:
    out = []
    for spec in sorted((REPO / "tasks").glob("*/task.spec.yaml")):
        text = spec.read_text()
        if kind is None or re.search(rf"^kind:\s*{kind}\s*$", text, re.M):
            out.append(spec.parent.name)
    return out


def fake_images(project: Path) -> None:
    sys.path.insert(0, str(REPO))
    try:
        from generator.image.images import BuiltImage, save_images
        from tests.helpers import fake_toolchain
    finally:
        sys.path.pop(0)
    import hashlib

    images = {}
    for task in example_tasks():
        digest = "sha256:" + hashlib.sha256(f"image {task}".encode()).hexdigest()
        repo = f"127.0.0.1:5000/gen-example/{task}"
        images[task] = BuiltImage(task=task, ref=f"{repo}@{digest}", repository=repo,
                                  digest=digest, platform="linux/amd64",
                                  key="sha256:" + hashlib.sha256(task.encode()).hexdigest(),
                                  engine="test", layout=f".gen/build/oci/{task}")
        fake_toolchain(project, digest)
    save_images(project, images)
    # a strength report on these images: the exports carry its figures in each task's metadata
    strength = {"tasks": {t: {"ok": True, "image": img.ref, "mutation_score": 0.9,
                              "fix_coverage": {"covered": 9, "total": 10},
                              "mutants": {"run": 10, "killed": 9, "survived": 1}}
                          for t, img in images.items()}}
    (project / ".gen" / "validate").mkdir(parents=True, exist_ok=True)
    (project / ".gen" / "validate" / "strength.json").write_text(json.dumps(strength))


@pytest.fixture(scope="session")
def example_unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example_project(tmp_path_factory.mktemp("example") / "project")


@pytest.fixture(scope="session")
def example_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_example_project(tmp_path_factory.mktemp("example-built") / "project")
    fake_images(project)
    return project


def expected_tasks(fmt: str) -> list[str]:
    return example_tasks("swe") if fmt == "swebench" else example_tasks()


def load_export(consumers: Any, fmt: str, out: Path) -> Any:
    if fmt == "tb":
        return consumers.run_loader("tb", out)
    if fmt == "harbor":
        return consumers.run_loader("harbor", out, "--lint")
    return consumers.run_loader("swebench", out / "instances.jsonl", "--task-repo", str(out))


def assert_all_loaded(res: Any, fmt: str) -> None:
    assert res.report.get("rejected") == [], res.explain()
    assert res.report.get("dropped", []) == [], res.explain()  # harbor's silent skips
    assert sorted(res.report["loaded"]) == expected_tasks(fmt), res.explain()
    assert res.returncode == 0, res.explain()


@pytest.mark.parametrize("fmt", FORMATS)
def test_example_export_loads(fmt: str, example_built: Path, tmp_path: Path,
                              consumers: Any) -> None:
    """The Done criterion: every task of the example dataset, exported with its images by
    digest, loads in the consumer with zero rejections and zero silently skipped tasks."""
    out = tmp_path / fmt
    report = gen_export(example_built, fmt, out)
    assert report["tasks"] == expected_tasks(fmt) and report["unbuilt"] == []
    assert sorted(report["images"]) == expected_tasks(fmt)

    assert_all_loaded(load_export(consumers, fmt, out), fmt)

    entries = sorted(p.name for p in out.iterdir())
    first = expected_tasks(fmt)[0]
    carried = {"tb": out / first / "test_strength.json", "harbor": out / first / "task.toml",
               "swebench": out / "tasks" / "inflection-humanize-id-suffix" / "task.yaml"
               }[fmt].read_text()
    # the figures are in the metadata the loaders took
    assert ("test_strength" in carried or fmt == "tb") and "9/10" in carried, carried
    if fmt == "tb":  # tb takes every entry of the folder as a task
        assert entries == expected_tasks(fmt)
    elif fmt == "harbor":
        assert entries == expected_tasks(fmt)
        toml = (out / expected_tasks(fmt)[0] / "task.toml").read_text()
        assert re.search(r'^docker_image = ".+@sha256:[0-9a-f]{64}"$', toml, re.M), toml
    else:
        assert entries == ["images.json", "instances.jsonl", "sweb.yaml", "tasks"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_example_export_loads_without_images(fmt: str, example_unbuilt: Path, tmp_path: Path,
                                             consumers: Any) -> None:
    """Before `gen build`: tb is the render output (compose builds from the Dockerfile);
    harbor and swebench need --allow-unbuilt and carry the Dockerfile build."""
    out = tmp_path / fmt
    extra = () if fmt == "tb" else ("--allow-unbuilt",)
    report = gen_export(example_unbuilt, fmt, out, *extra)
    assert report["unbuilt"] == expected_tasks(fmt) and report["images"] == {}
    assert_all_loaded(load_export(consumers, fmt, out), fmt)


@pytest.mark.parametrize("fmt", ["harbor", "swebench"])
def test_export_refuses_unbuilt_tasks(fmt: str, example_unbuilt: Path, tmp_path: Path) -> None:
    proc = gen("export", "--project", str(example_unbuilt), "--format", fmt, "--out",
               str(tmp_path / fmt))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    first = expected_tasks(fmt)[0]
    assert f"task {first} has no built image (fix: run `gen build`" in lines[0]
    assert not (tmp_path / fmt).exists()


def test_loaders_reject_broken_exports(example_built: Path, tmp_path: Path,
                                       consumers: Any) -> None:
    """The checks can fail: what a consumer would silently ignore or skip in a (hand-broken)
    export is reported by the loaders."""
    # harbor: a misspelled section loads silently in Task(); `harbor lint` reports it. A
    # task without tests/test.sh is dropped by the dataset loader without a word.
    harbor = tmp_path / "harbor"
    gen_export(example_built, "harbor", harbor)
    first, second = example_tasks()[:2]
    toml = harbor / first / "task.toml"
    toml.write_text(toml.read_text().replace("[verifier]", "[verifer]"))
    (harbor / second / "tests" / "test.sh").unlink()
    res = consumers.run_loader("harbor", harbor, "--lint")
    assert res.returncode == 1, res.explain()
    assert "unknown-config-field" in res.rejected[first], res.explain()
    assert second in res.report["dropped"], res.explain()

    # swebench: a task repo whose image is not the derived name fails `swebench dataset
    # check`; an instance whose eval script differs from the task repo's is reported.
    sw = tmp_path / "swebench"
    gen_export(example_built, "swebench", sw)
    swe = example_tasks("swe")[0]
    meta = sw / "tasks" / swe / "task.yaml"
    meta.write_text(re.sub(r"^image: .*$", 'image: "elsewhere:latest"', meta.read_text(),
                           flags=re.M))
    rows = [json.loads(line) for line in (sw / "instances.jsonl").read_text().splitlines()]
    rows[0]["eval_script"] += "echo tampered\n"
    (sw / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = consumers.run_loader("swebench", sw / "instances.jsonl", "--task-repo", str(sw))
    assert res.returncode == 1, res.explain()
    errors = " | ".join(r["error"] for r in res.report["rejected"])
    assert "not the derived name" in errors and "eval_script" in errors, res.explain()

    # tb: a task without difficulty is rejected by tb's own Task model
    tb = tmp_path / "tb"
    gen_export(example_built, "tb", tb)
    task_yaml = tb / first / "task.yaml"
    task_yaml.write_text(re.sub(r"^difficulty:.*\n", "", task_yaml.read_text(), flags=re.M))
    res = consumers.run_loader("tb", tb)
    assert res.returncode == 1 and list(res.rejected) == [first], res.explain()
