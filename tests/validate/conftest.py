"""The integration fixtures (registry, base image, content store) for the validate tests, and
the example's built images in a fresh copy of the example project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.image.build import build_project, project_engine
from generator.image.images import BuiltImage, load_images, save_images
from generator.lock.fetch import fetch_project
from generator.validate.runner import get_runner
from tests.integration.conftest import (
    REPO,
    base_image,
    copy_example,
    gen_cas,
    need,
    registry,
    run_gen,
    tools,
)

__all__ = ["base_image", "example", "example_images", "gen_cas", "registry", "tools",
           "validate_json"]

EXAMPLE_TASKS = ("csv-stats-cli", "fix-log-parser", "inflection-humanize-id-suffix")


@pytest.fixture(scope="session")
def example_images(base_image: str, gen_cas: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> dict[str, BuiltImage]:
    """The example's built images: the repo's own when it has them, else built here."""
    images = load_images(REPO)
    if all(t in images and (REPO / images[t].layout / "index.json").is_file()
           for t in EXAMPLE_TASKS):
        return {t: BuiltImage(**{**images[t].__dict__,
                                 "layout": str((REPO / images[t].layout).resolve())})
                for t in EXAMPLE_TASKS}
    project = copy_example(tmp_path_factory.mktemp("example-build") / "p")
    fetch_project(project)
    build_project(project, engine=project_engine(project, "buildah"))
    built = load_images(project)
    return {t: BuiltImage(**{**built[t].__dict__,
                             "layout": str((project / built[t].layout).resolve())})
            for t in EXAMPLE_TASKS}


@pytest.fixture
def example(example_images: dict[str, BuiltImage], tmp_path: Path) -> Path:
    project = copy_example(tmp_path / "example")
    save_images(project, example_images)
    return project


def validate_json(project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """`gen validate --json --runs 1 ARGS` on the Docker engine: (exit code, report, stderr)."""
    why = get_runner("docker").available()
    need(why is None, f"engine docker cannot run containers: {why}")
    proc = run_gen("validate", "--project", str(project), "--json", "--runs", "1", *args)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        raise AssertionError(f"no JSON report: {proc.stdout}\n{proc.stderr}") from None
