"""`gen gc`: exactly the garbage goes; what a current image, lock or running command needs stays."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from generator.cli import main
from generator.core.fsutil import BUSY_LOCK, LockMode, ProjectBusy, project_lock
from generator.image.gc import collect_garbage
from generator.image.images import BuiltImage, save_images
from generator.lock.lockset import read_lockset
from tests.helpers import TERMINAL_FILES, build_project, fake_digest, terminal_spec

SPEC = terminal_spec(environment={"apt": ["python3-pip"], "python": ["requests==2.32.3"]})


def _hex(seed: str) -> str:
    return fake_digest(seed).split(":", 1)[1]


def _layout(root: Path, blobs: dict[str, bytes]) -> None:
    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    for name, data in blobs.items():
        (root / "blobs" / "sha256" / name).write_bytes(data)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one current image and garbage of every kind next to it."""
    monkeypatch.delenv("GEN_CAS", raising=False)
    p = build_project(tmp_path / "p", {"t": (SPEC, TERMINAL_FILES)})
    gen = p / ".gen"
    keep_key, old_key = _hex("keep"), _hex("old")
    store = gen / "cas" / "sha256"
    store.mkdir(parents=True)
    # the store: what the locks pin, the base's rootfs and layer, and things nothing needs
    locks = read_lockset(p)
    apt = locks.apt("t")
    py = locks.python("t")
    assert apt is not None and py is not None
    pinned = [apt.packages[0].sha256, py.pins[0].hashes[0].split(":", 1)[1]]
    for h in pinned:
        (store / h).write_bytes(b"pinned " + h.encode())
    base_layer = _hex("base-layer")
    (store / base_layer).write_bytes(b"L" * 4000)
    (store / _hex("rootfs")).write_bytes(b"R" * 3000)
    (store / _hex("stale-deb")).write_bytes(b"S" * 2000)
    (store / ".partial-abc").write_bytes(b"half")
    # images: the current one and an old one; both layouts link the base layer
    oci = gen / "build" / "oci"
    _layout(oci / keep_key, {_hex("m1"): b"manifest-1", base_layer: b""})
    _layout(oci / old_key, {_hex("m2"): b"manifest-2" * 100, base_layer: b""})
    for key in (keep_key, old_key):
        os.unlink(oci / key / "blobs" / "sha256" / base_layer)
        os.link(store / base_layer, oci / key / "blobs" / "sha256" / base_layer)
    cache = gen / "build" / "cache"
    cache.mkdir()
    for key in (keep_key, old_key):
        (cache / f"{key}.json").write_text(json.dumps({"key": f"sha256:{key}"}))
    (cache / f".{keep_key}.json.gen-tmp-99").write_text("{")
    save_images(p, {"t": BuiltImage(
        task="t", ref=f"127.0.0.1:5000/demo/t@{fake_digest('m1')}", repository="r",
        digest=fake_digest("m1"), platform="linux/amd64", key=f"sha256:{keep_key}",
        engine="buildah 1", layout=f".gen/build/oci/{keep_key}")})
    # leftovers of interrupted runs; buildah storage has read-only directories
    (gen / "build" / "build-t-x1y2").mkdir()
    (gen / "build" / "build-t-x1y2" / "context").write_text("x")
    ro = gen / "build" / "buildah-abc123" / "root" / "overlay"
    ro.mkdir(parents=True)
    (ro / "layer").write_text("x" * 10)
    ro.chmod(0o500)
    (gen / "verify" / ".tmp-t-a-q1w2e3r4").mkdir(parents=True)
    (gen / "verify" / "report.json").write_text("{}")
    (p / "dataset" / ".gen-staging" / "t").mkdir(parents=True)
    # base images: the one images.lock pins, and an older one
    pin = locks.images.pins[0]
    base = gen / "base"
    base.mkdir()
    (base / "aaaa.json").write_text(json.dumps({
        "index_digest": pin.index_digest, "manifest_digest": pin.manifest_digest,
        "rootfs_sha256": _hex("rootfs")}))
    _layout(base / "aaaa", {_hex("base-config"): b"{}"})
    (base / "bbbb.json").write_text(json.dumps({
        "index_digest": fake_digest("x"), "manifest_digest": fake_digest("y"),
        "rootfs_sha256": _hex("old-rootfs")}))
    _layout(base / "bbbb", {})
    (store / _hex("old-rootfs")).write_bytes(b"O" * 500)
    return p


def _tree(root: Path) -> set[str]:
    """Every path under root but the lock file (which the CLI creates)."""
    return {q.relative_to(root).as_posix() for q in root.rglob("*")} - {BUSY_LOCK}


def test_dry_run_lists_and_deletes_nothing(project: Path) -> None:
    before = _tree(project)
    result = collect_garbage(project, dry_run=True, store=True)
    assert _tree(project) == before
    assert result.by_kind() == {"image layout": 1, "cache record": 1, "leftover": 6,
                                "store file": 2, "base image": 2}
    assert result.kept == {"image layouts": 1, "store files": 4, "base images": 1}


def test_gc_deletes_exactly_the_garbage(project: Path) -> None:
    keep, old = _hex("keep"), _hex("old")
    result = collect_garbage(project)  # without --store: the store and bases are untouched
    gen = project / ".gen"
    assert sorted(p.name for p in (gen / "build" / "oci").iterdir()) == [keep]
    assert sorted(p.name for p in (gen / "build" / "cache").iterdir()) == [f"{keep}.json"]
    assert sorted(p.name for p in (gen / "build").iterdir()) == [
        "cache", "images.json", "oci"]
    assert [p.name for p in (gen / "verify").iterdir()] == ["report.json"]
    assert not (project / "dataset" / ".gen-staging").exists()
    assert len(list((gen / "cas" / "sha256").iterdir())) == 7
    assert (gen / "base" / "bbbb").is_dir()
    # the old layout's base layer is a link the store keeps: it frees only its own bytes
    [layout] = [r for r in result.removed if r.kind == "image layout"]
    assert layout.path == f".gen/build/oci/{old}"
    assert layout.bytes == 1000 + len('{"imageLayoutVersion":"1.0.0"}') + len(
        '{"schemaVersion":2,"manifests":[]}')
    # the current image still loads, and its layout is whole
    assert (gen / "build" / "oci" / keep / "blobs" / "sha256" / _hex("base-layer")).stat(
        ).st_size == 4000
    again = collect_garbage(project)
    assert again.removed == [] and again.freed == 0


def test_buildah_storage_without_buildah_is_kept_and_named(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruning buildah's storage goes through buildah (the integration test prunes a real
    one); without it the storage is left alone and the report says why."""
    from generator.image.engines.buildah import Buildah

    storage = project / ".gen" / "build" / "buildah" / "root"
    storage.mkdir(parents=True)
    monkeypatch.setattr(Buildah, "available", lambda self: "buildah is not installed")
    result = collect_garbage(project)
    assert storage.is_dir()
    assert (".gen/build/buildah", "buildah is not installed, so its storage was not pruned "
            "(gen infra install)") in result.skipped
    assert not [r for r in result.removed if r.kind.startswith("buildah")]


def test_which_buildah_images_are_pinned(project: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An image in buildah's storage stays when its digest, or a digest its names carry, is
    one images.lock pins (index or manifest digest); everything else goes, with the working
    containers (the real buildah: tests/integration/test_build_verify.py)."""
    from generator.image.engines.base import StoredImage
    from generator.image.engines.buildah import Buildah

    pin = read_lockset(project).images.pins[0]
    images = [
        StoredImage("i1", (f"{pin.repository}@{pin.index_digest}",), fake_digest("m"), 10),
        StoredImage("i2", (), pin.manifest_digest, 20),  # pulled by manifest digest
        StoredImage("i3", ("localhost/old:1",), fake_digest("old"), 30),  # no '@' in it
        StoredImage("i4", (), fake_digest("anon"), 40),  # no names at all
        StoredImage("i5", (f"{pin.repository}@{fake_digest('older')}",), fake_digest("o"), 50),
    ]
    removed: list[tuple[list[str], list[str]]] = []
    (project / ".gen" / "build" / "buildah" / "root").mkdir(parents=True)
    monkeypatch.setattr(Buildah, "available", lambda self: None)
    monkeypatch.setattr(Buildah, "stored_images", lambda self: images)
    monkeypatch.setattr(Buildah, "stored_containers", lambda self: ["killed-build"])
    monkeypatch.setattr(Buildah, "remove_stored",
                        lambda self, i, c: removed.append((list(i), list(c))))
    dry = collect_garbage(project, dry_run=True)
    assert removed == []
    gone = {(r.kind, r.path, r.bytes) for r in dry.removed if r.kind.startswith("buildah")}
    assert gone == {("buildah container", "killed-build", 0),
                    ("buildah image", "localhost/old:1", 30), ("buildah image", "i4", 40),
                    ("buildah image", f"{pin.repository}@{fake_digest('older')}", 50)}
    assert dry.kept["buildah images"] == 2
    collect_garbage(project)
    assert removed == [(["i3", "i4", "i5"], ["killed-build"])]


def test_a_failing_buildah_leaves_its_storage_and_gc_goes_on(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.core.errors import ToolError
    from generator.image.engines.buildah import Buildah

    def fail(self: Buildah) -> list[str]:
        raise ToolError("cannot list the containers in buildah's storage: buildah exited 125")

    (project / ".gen" / "build" / "buildah" / "root").mkdir(parents=True)
    monkeypatch.setattr(Buildah, "available", lambda self: None)
    monkeypatch.setattr(Buildah, "stored_containers", fail)
    result = collect_garbage(project)
    [(_, why)] = [s for s in result.skipped if s[0] == ".gen/build/buildah"]
    assert "buildah failed, so its storage was not pruned" in why and "exited 125" in why
    assert result.by_kind()["image layout"] == 1  # the files were still collected


def test_gc_store_keeps_what_locks_bases_and_images_reference(project: Path) -> None:
    result = collect_garbage(project, store=True)
    store = project / ".gen" / "cas" / "sha256"
    locks = read_lockset(project)
    apt, py = locks.apt("t"), locks.python("t")
    assert apt is not None and py is not None
    assert sorted(p.name for p in store.iterdir()) == sorted([
        apt.packages[0].sha256, py.pins[0].hashes[0].split(":", 1)[1], _hex("base-layer"),
        _hex("rootfs")])
    assert sorted(p.name for p in (project / ".gen" / "base").iterdir()) == [
        "aaaa", "aaaa.json"]
    # the base layer was linked from 3 places; 2 remain: no bytes freed for it
    removed = {r.path: r.bytes for r in result.removed}
    assert removed[f".gen/cas/sha256/{_hex('stale-deb')}"] == 2000
    assert removed[f".gen/cas/sha256/{_hex('old-rootfs')}"] == 500


def test_gc_store_refuses_a_shared_store(project: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("GEN_CAS", str(tmp_path / "shared"))
    before = _tree(project)
    assert main(["gc", "--project", str(project), "--store"]) == 2
    err = capsys.readouterr().err
    assert "GEN_CAS" in err and "(fix: run gen gc without --store, or unset GEN_CAS)" in err
    assert _tree(project) == before


def test_gc_never_deletes_below_a_mount(project: Path) -> None:
    target = project / ".gen" / "build" / "buildah-abc123" / "root" / "overlay"
    target.chmod(0o700)
    mnt = target / "merged"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "gen-gc-test", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        (mnt / "inside").write_text("data")
        result = collect_garbage(project)
        assert [p for p, _ in result.skipped] == [".gen/build/buildah-abc123"]
        assert (mnt / "inside").read_text() == "data"
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert [r.path for r in collect_garbage(project).removed] == [".gen/build/buildah-abc123"]
    assert not target.exists()


def test_cli_report(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--project", str(project), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gc: would delete 1 cache record, 1 image layout, 5 leftovers (")
    assert main(["gc", "--project", str(project), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dry_run"] is False and data["freed_bytes"] > 0
    assert {r["kind"] for r in data["removed"]} == {"image layout", "cache record", "leftover"}


def test_gc_refuses_while_another_command_works(project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(project / BUSY_LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_SH)\nprint('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = _tree(project)
        assert main(["gc", "--project", str(project)]) == 1
        err = capsys.readouterr().err
        assert "another gen command is working on" in err and "busy.lock" in err
        assert _tree(project) == before
    finally:
        holder.kill()
        holder.wait()
    assert main(["gc", "--project", str(project)]) == 0  # the lock died with its holder


def _hold(project: Path, mode: LockMode) -> tuple[threading.Thread, threading.Event]:
    """Another command holding the project lock in `mode` for one second (started and
    holding when this returns); the event is set just before it lets go."""
    took, done = threading.Event(), threading.Event()

    def holder() -> None:
        with project_lock(project, mode):
            took.set()
            time.sleep(1.0)
            done.set()

    t = threading.Thread(target=holder)
    t.start()
    took.wait()
    return t, done


def test_commands_wait_for_a_running_gc(project: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(project / "dataset" / ".gen-staging")
    t, released = _hold(project, "exclusive")  # a gen gc
    assert main(["render", "--project", str(project), "--check"]) in (0, 1)
    assert released.is_set()  # render ran only after the exclusive holder let go
    assert "waiting for `gen gc` or `gen release` to finish" in capsys.readouterr().err
    t.join()
    # while any command holds it shared, an exclusive taker is refused at once
    with project_lock(project, "shared"), pytest.raises(ProjectBusy), \
            project_lock(project, "exclusive"):
        pass


def test_not_a_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--project", str(tmp_path)]) == 2
    assert "not a gen project (no gen.yaml)" in capsys.readouterr().err
    assert not (tmp_path / ".gen").exists()


def test_release_waits_for_running_commands(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """gen release holds the lock exclusively (waiting): what it checks is what it signs."""
    t, done = _hold(project, "shared")  # e.g. a gen build still writing images.json
    main(["release", "--project", str(project), "--dry-run", "--allow", "all"])
    assert done.is_set()
    assert "waiting for the other gen commands on this project to finish" in \
        capsys.readouterr().err
    t.join()


def test_a_check_creates_no_state_dir(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    p = build_project(tmp_path / "p", {"t": (SPEC, TERMINAL_FILES)})
    main(["render", "--project", str(p), "--check"])
    assert not (p / ".gen").exists()
    # a command that writes takes the lock even on a fresh project: a gc started meanwhile
    # must not take its work dirs for leftovers
    assert main(["render", "--project", str(p)]) == 0
    assert (p / BUSY_LOCK).is_file()


@pytest.mark.parametrize("text, size", [
    ("127 MB", 127_000_000), ("5.12 kB", 5_120), ("1e+03 KB", 1_000_000), ("2.5GB", 2_500_000_000),
    ("12 B", 12), ("0 B", 0), ("1.2.3 MB", 0), ("12 MiB", 0), ("", 0), ("big", 0),
])
def test_buildah_sizes_are_read_in_decimal_units(text: str, size: int) -> None:
    """What gc reports freeing in buildah's storage: its sizes as buildah prints them."""
    from generator.image.engines.base import parse_size

    assert parse_size(text) == size
