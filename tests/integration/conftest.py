"""Fixtures for tests against the real local infrastructure (registry, Debian mirror, PyPI).

`gen infra up` starts it and `eval "$(gen infra env)"` exports
GEN_REGISTRY / DOCKER_HOST; `scripts/test.sh` does both. A missing piece FAILS the test under
CI=true and skips it elsewhere (a developer without the infrastructure still gets the unit run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("GEN_REGISTRY", "127.0.0.1:5000")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(ok: bool, reason: str) -> None:
    if ok:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing infrastructure is a failure)", pytrace=False)
    pytest.skip(reason)


def _registry_up() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def registry() -> str:
    need(_registry_up(), f"no registry answers at http://{REGISTRY}/v2/ "
         "(start one: gen infra up)")
    return REGISTRY


@pytest.fixture(scope="session")
def tools() -> None:
    for tool in ("skopeo", "mmdebstrap", "apt-get", "git"):
        need(shutil.which(tool) is not None, f"{tool} is not installed "
             "(fix: gen infra install)")


@pytest.fixture(scope="session")
def gen_cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One CAS for the whole session (the repo's own store when present: it is a cache)."""
    old = os.environ.get("GEN_CAS")
    path = Path(old) if old else REPO / ".gen" / "cas"
    os.environ["GEN_CAS"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GEN_CAS", None)
    else:
        os.environ["GEN_CAS"] = old


@pytest.fixture(scope="session")
def base_image(registry: str, tools: None, gen_cas: Path) -> str:
    """The repo's locked base (gen base build: reuses the stored rootfs when there is one)."""
    from generator.base import build_base

    ref = f"{registry}/gen/debian:bookworm"
    result = build_base(REPO, ref=ref)
    return result.ref


def copy_example(dst: Path) -> Path:
    """A copy of the example dataset's inputs and rendered output (this repo) at `dst`, so a
    test never touches the repo's own .gen/ state."""
    dst.mkdir(parents=True)
    for name in ("gen.yaml", "tasks", "lockfiles", "dataset"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst / name)
    return dst


def run_gen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900, env=os.environ.copy())
