"""`gen init`'s scaffold goes through the real pipeline: lock, fetch, render, build, validate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.image.engines.select import available_engines
from tests.integration.conftest import REPO, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scaffold_locks_builds_and_validates(base_image: str, gen_cas: Path,
                                             tmp_path: Path) -> None:
    engines = available_engines(REPO / ".gen" / "build")
    for name in ("buildah", "docker"):
        need(engines.get(name) is None, f"engine {name} is not usable: {engines.get(name)}")
    project = tmp_path / "new-dataset"
    init = run_gen("init", "--project", str(project), "--json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["name"] == "new-dataset"
    # the scaffold names the same base image the repo's example uses (the base_image fixture)
    assert base_image.split("@")[0] in (project / "gen.yaml").read_text()
    for step in ("lock", "fetch", "render", "build"):
        proc = run_gen(step, "--project", str(project))
        assert proc.returncode == 0, f"gen {step}: {proc.stdout}\n{proc.stderr}"
    assert (project / "lockfiles" / "tasks" / "hello-world" / "apt.lock").is_file()
    validate = run_gen("validate", "--project", str(project), "--runs", "1", "--json")
    assert validate.returncode == 0, validate.stdout + validate.stderr
    report = json.loads(validate.stdout)
    assert report["ok"] is True and report["summary"]["valid"] == 1, report["summary"]
    checks = report["tasks"]["hello-world"]["checks"]
    assert checks["image_has_no_tests_or_solution"]["ok"] is True
    check = run_gen("render", "--check", "--project", str(project))
    assert check.returncode == 0, check.stdout + check.stderr
