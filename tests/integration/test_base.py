"""`gen base build`: mmdebstrap + SOURCE_DATE_EPOCH + gen's OCI writer give the same digest
every time, and the push to the registry keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.image import registry as reg
from generator.image.base import build_base
from generator.lock.lockset import read_lockset
from tests.integration.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.network, pytest.mark.slow]


def test_base_build_twice_gives_the_same_digest(base_image: str, tmp_path: Path) -> None:
    first = reg.resolve(base_image)
    # a second, independent run of mmdebstrap (--rebuild) from the base lock, into another
    # state dir; the registry keeps serving the first push's bytes
    second = build_base(REPO, ref=base_image, rebuild=True, state_dir=tmp_path / "base",
                        push=False)
    assert second.built and second.base_lock
    assert second.index_digest == first.digest
    assert second.manifest_digest == first.platforms["linux/amd64"]
    pin = read_lockset(REPO).images.get(base_image, "linux/amd64")
    assert pin is not None and pin.manifest_digest == second.manifest_digest
    assert pin.base_lock == second.base_lock
