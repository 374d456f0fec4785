"""`gen base build`: mmdebstrap + SOURCE_DATE_EPOCH + gen's OCI writer give the same digest
every time, and the push to the registry keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator import registry as reg
from generator.base import build_base
from tests.integration.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.network, pytest.mark.slow]


def test_base_build_twice_gives_the_same_digest(base_image: str, tmp_path: Path) -> None:
    first = reg.resolve(base_image)
    # a second, independent run of mmdebstrap (--rebuild) into another state dir and tag
    ref2 = base_image.rsplit(":", 1)[0] + ":rebuild-check"
    second = build_base(REPO, ref=ref2, rebuild=True, state_dir=tmp_path / "base")
    assert second.built
    assert second.index_digest == first.digest
    assert second.manifest_digest == first.platforms["linux/amd64"]
    # and the registry serves exactly those bytes under the new tag
    got = reg.resolve(ref2)
    assert got.digest == second.index_digest
