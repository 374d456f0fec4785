"""The unit tests' engine guard (tests/unit/conftest.py) cannot be walked around."""

from __future__ import annotations

import pytest

from generator.image.engines.select import get_engine
from generator.validate.runner import DockerRunner, PodmanRunner


def test_a_runner_cannot_reach_an_engine() -> None:
    with pytest.raises(AssertionError, match="a unit test tried to run docker"):
        DockerRunner().version()
    with pytest.raises(AssertionError, match="a unit test tried to run podman"):
        PodmanRunner().image_id("x")


def test_a_build_engine_cannot_run(tmp_path: object) -> None:
    with pytest.raises(AssertionError, match="a unit test tried to run buildah"):
        get_engine("buildah", tmp_path).version()  # type: ignore[arg-type]
