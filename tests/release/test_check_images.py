"""`gen verify-release --check-images` against the local registry (127.0.0.1:5000)."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from generator.image.images import BuiltImage, save_images
from generator.image.registry import resolve
from tests.release.release_support import IMAGES, gen, need

pytestmark = pytest.mark.integration

REGISTRY = os.environ.get("GEN_REGISTRY", "127.0.0.1:5000")
BASE = os.environ.get("GEN_BASE_IMAGE", f"{REGISTRY}/gen/debian:bookworm")


def _up() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture
def pushed() -> tuple[str, str, str]:
    """(repository, platform, digest) of an image the registry really serves."""
    need(_up(), f"no registry at http://{REGISTRY}/v2/ (start it: gen infra up)")
    try:
        got = resolve(BASE)
    except Exception as exc:  # the base image is pushed by `gen base build`
        need(False, f"{BASE} is not in the registry ({exc}); run `gen base build`")
        raise
    plat, digest = sorted(got.platforms.items())[0]
    return BASE.rsplit(":", 1)[0], plat, digest


def _release(project: Path, out: Path, images: dict[str, BuiltImage]) -> None:
    save_images(project, images)
    r = gen("release", "--project", str(project), "--sign", "none", "--out", str(out))
    assert r.code == 0, r.err


def test_check_images_ok(project: Path, tmp_path: Path, pushed: tuple[str, str, str]) -> None:
    repo, plat, digest = pushed
    img = BuiltImage(task="hello", ref=f"{repo}@{digest}", repository=repo, digest=digest,
                     platform=plat, key="sha256:" + "0" * 64, engine="test", layout="x")
    _release(project, tmp_path / "rel", {"hello": img})
    r = gen("verify-release", str(tmp_path / "rel"), "--allow-unsigned", "--check-images",
            "--json")
    assert r.code == 0, r.err
    assert "images" in r.json()["checked"]


def test_check_images_unknown_digest(project: Path, tmp_path: Path,
                                     pushed: tuple[str, str, str]) -> None:
    _release(project, tmp_path / "rel", dict(IMAGES))  # made-up digests
    r = gen("verify-release", str(tmp_path / "rel"), "--allow-unsigned", "--check-images")
    assert r.code == 1
    assert "image 127.0.0.1:5000/demo/hello@sha256:aaaaaaaaaaaa…: registry answered 404" in r.err
