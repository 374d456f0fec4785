"""The base as a locked derivation: built only from its base lock's .debs, on any machine, from
whichever source still has them, to the digest images.lock pins.

The "mirror" and the "snapshot archive" are loopback HTTP servers over directories of the real
locked .debs (taken from the session's store, which the `base_image` fixture filled from the
lock), so the test does not depend on what Debian's mirror serves today.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote

import pytest

from generator.core.cas import Store
from generator.image.base import build_base
from generator.lock.lockfiles import parse_base_lock
from generator.lock.lockset import read_lockset
from tests.integration.conftest import REPO, closed_port, copy_example, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _lock_file(project: Path) -> Path:
    return next((project / "lockfiles" / "bases").glob("*.lock"))


def _mirror_of(project: Path, store: Store, root: Path) -> tuple[list[str], str]:
    """A directory laid out like the mirror (<archive>/pool/...) holding the locked .debs;
    returns their paths below it and the lock's snapshot timestamp."""
    lock = parse_base_lock(_lock_file(project).read_text(), "base lock")
    paths = []
    for p in lock.packages:
        url = p.urls[0]
        prefix, _, rest = url.partition("/pool/")
        rel = f"{prefix.rsplit('/', 1)[-1]}/pool/{rest}"
        dst = root / unquote(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.path(p.sha256), dst)
        paths.append(rel)
    return paths, lock.snapshot


def _point_lock_at(project: Path, mirror: str) -> None:
    """Point the lock's package URLs (not its headers: the sources go into the image) at a
    loopback mirror."""
    f = _lock_file(project)
    lines = f.read_text().splitlines(keepends=True)
    for host in ("http://deb.debian.org/", "https://deb.debian.org/"):
        lines = [ln if ln.startswith("#") else ln.replace(host, mirror.rstrip("/") + "/")
                 for ln in lines]
    f.write_text("".join(lines))


def _clone(tmp: Path, name: str) -> Path:
    return copy_example(tmp / name)


@pytest.fixture
def pinned(base_image: str) -> str:
    pin = read_lockset(REPO).images.get(base_image, "linux/amd64")
    assert pin is not None and pin.base_lock, "the example's base pin names its base lock"
    return pin.manifest_digest


def test_two_clones_with_separate_stores_build_the_pinned_base(
        base_image: str, pinned: str, gen_cas: Path, tmp_path: Path, http_dir: object,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mirror_dir = tmp_path / "mirror"
    paths, snapshot = _mirror_of(REPO, Store(gen_cas), mirror_dir)
    mirror = http_dir(mirror_dir)  # type: ignore[operator]
    # a point release: one locked package leaves the mirror; the snapshot archive keeps it
    gone = unquote(next(p for p in paths if "/libc6_" in p))
    snap_dir = tmp_path / "snapshot"
    archive, _, rest = gone.partition("/pool/")
    dst = snap_dir / "archive" / archive / snapshot / "pool" / rest
    dst.parent.mkdir(parents=True)
    os.replace(mirror_dir / gone, dst)
    snap = http_dir(snap_dir)  # type: ignore[operator]
    monkeypatch.setenv("GEN_SNAPSHOT_BASE", snap)
    digests = []
    for name in ("a", "b"):
        project = _clone(tmp_path, name)
        _point_lock_at(project, mirror)
        monkeypatch.setenv("GEN_CAS", str(tmp_path / f"cas-{name}"))  # an empty store each
        result = build_base(project, ref=base_image, push=False, rebuild=True)
        assert result.built and result.base_lock
        assert "fetch" in result.seconds
        digests.append(result.manifest_digest)
        store = Store(tmp_path / f"cas-{name}")
        lock = parse_base_lock(_lock_file(project).read_text(), "x")
        assert all(store.has(p.sha256) for p in lock.packages)
    assert digests[0] == digests[1] == pinned

    # every source gone (mirror and snapshot lack it, no artifact cache): one line, exit 1
    (dst).unlink()
    project = _clone(tmp_path, "c")
    _point_lock_at(project, mirror)
    env_cas = tmp_path / "cas-c"
    monkeypatch.setenv("GEN_CAS", str(env_cas))
    (project / "gen.yaml").write_text((project / "gen.yaml").read_text().replace(
        "registry: 127.0.0.1:5000/gen-example",
        f"registry: 127.0.0.1:{closed_port()}/gen-example"))
    got = run_gen("base", "build", "--project", str(project), "--no-push")
    assert got.returncode == 1, got.stderr
    lines = [ln for ln in got.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, got.stderr
    assert "libc6_" in lines[0] and "gen lock --update" in lines[0]
    assert "snapshot" in lines[0]
