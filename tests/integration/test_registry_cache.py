"""The registry as a shared build cache: an image built on one machine (here: one project
copy) is pulled, blob by verified blob, by another with the same input key instead of being
built again. Real buildah, real skopeo, the real local registry."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from generator.core.cas import Store, default_store
from generator.core.errors import ToolError
from generator.core.fsutil import link_or_copy
from generator.image import build as build_mod
from generator.image import registry as reg
from generator.image import verify as verify_mod
from generator.image.build import build_project, cache_tag, known_base_layers, project_engine
from generator.image.engines.select import available_engines
from generator.image.images import load_images
from generator.image.oci import MT_CONFIG, MT_LAYER_TAR, Layout
from generator.image.verify import verify_project
from generator.lock.fetch import artifact_names
from generator.lock.lockset import read_lockset
from generator.spec.project import load_project
from tests.integration.conftest import REPO, copy_example, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASK = "fix-log-parser"


def _fetched_copy(dst: Path) -> Path:
    project = copy_example(dst)
    proc = run_gen("fetch", "--project", str(project))
    assert proc.returncode == 0, proc.stderr
    return project


def _no_build(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("built an image the registry cache holds")


def _blobs_verified(layout: Path) -> int:
    n = 0
    for blob in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
        n += 1
    return n


def test_an_image_built_elsewhere_is_pulled_not_rebuilt(
        base_image: str, gen_cas: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    why = available_engines(REPO / ".gen" / "build").get("buildah")
    need(why is None, f"engine buildah is not usable: {why}")
    # machine A: builds (whatever the registry holds) and pushes under the key's tag
    a = _fetched_copy(tmp_path / "a")
    _, [built] = build_project(a, only=[TASK], engine=project_engine(a, "buildah"),
                               registry_cache=False)
    assert built.cache is None
    key = built.image.key
    tag = f"{built.image.repository}:{cache_tag(key)}"
    assert reg.resolve(tag).digest == built.image.digest

    # machine B: a fresh checkout, nothing in .gen/build; building is forbidden
    b = _fetched_copy(tmp_path / "b")
    monkeypatch.setattr(build_mod, "build_task_image", _no_build)
    _, [pulled] = build_project(b, only=[TASK], engine=project_engine(b, "buildah"))
    assert pulled.cached and pulled.cache == "registry"
    assert pulled.image.key == key and pulled.image.digest == built.image.digest
    assert load_images(b)[TASK].digest == built.image.digest
    layout = b / pulled.image.layout
    assert Layout.open(layout).image(TASK).digest == built.image.digest
    assert _blobs_verified(layout) >= 3  # manifest, config, layers: the exact bytes
    record = json.loads((b / ".gen/build/cache" / f"{key.split(':', 1)[1]}.json").read_text())
    assert record["pulled_from"] == f"{tag}@{built.image.digest}"
    # validate's anti-cheat reads that layout: it must hold the whole image
    image = Layout.open(layout).image(TASK)
    assert all(Layout.open(layout).has_blob(d.digest) for d in image.layers)
    # the base's layers were not downloaded again: linked from the store (one inode)
    base = known_base_layers(b / "dataset" / TASK / "Dockerfile", default_store(b))
    assert base and {k.descriptor.digest for k in base} <= {d.digest for d in image.layers}
    need(base[0].path.stat().st_dev == layout.stat().st_dev,
         "the store and the test projects must be on one file system to share inodes")
    for k in base:
        st_store, st_blob = k.path.stat(), Layout.open(layout).blob_path(k.descriptor.digest).stat()
        assert st_blob.st_size == k.descriptor.size and st_blob.st_ino == st_store.st_ino
    # and a local build shares them the same way
    a_layout = Layout.open(a / built.image.layout)
    for k in base:
        assert a_layout.blob_path(k.descriptor.digest).stat().st_ino == k.path.stat().st_ino

    # then it is a local hit; and the CLI reports where a cached image came from
    _, [again] = build_project(b, only=[TASK], engine=project_engine(b, "buildah"))
    assert again.cache == "local" and again.image.digest == built.image.digest
    c = _fetched_copy(tmp_path / "c")
    monkeypatch.undo()
    out = run_gen("build", "--project", str(c), "--engine", "buildah", "--json", TASK)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["tasks"][TASK]["cache"] == "registry"

    # --no-registry-cache / --rebuild: it is built here, never pulled
    monkeypatch.setattr(build_mod, "build_task_image", _no_build)
    d = _fetched_copy(tmp_path / "d")
    with pytest.raises(AssertionError, match="registry cache holds"):
        build_project(d, only=[TASK], engine=project_engine(d, "buildah"), registry_cache=False)
    with pytest.raises(AssertionError, match="registry cache holds"):
        build_project(b, only=[TASK], engine=project_engine(b, "buildah"), rebuild=True)
    # and without pushing, the registry cache is neither read nor written
    with pytest.raises(AssertionError, match="registry cache holds"):
        build_project(d, only=[TASK], engine=project_engine(d, "buildah"), push=False)


def _push_image(tmp: Path, dest: str, platform: str) -> str:
    layout = Layout.create(tmp / "oci")
    layer = layout.put_bytes(b"\0" * 1024, MT_LAYER_TAR)  # an empty tar: two zero blocks
    desc = layout.write_image([(layer, layer.digest)], {"config": {}}, platform)
    layout.tag(desc, "img")
    reg.push_layout(layout.root, "img", dest, all_platforms=False)
    return desc.digest


def test_pull_image_missing_tag_wrong_platform_and_index(registry: str, tmp_path: Path,
                                                         tools: None) -> None:
    repo = f"{registry}/gen-test-pull/img"
    assert reg.pull_image(f"{repo}:build-{'0' * 64}", tmp_path / "none", "x") is None
    assert not (tmp_path / "none").exists()

    key = "sha256:" + "1" * 64
    digest = _push_image(tmp_path / "arm", f"{repo}:{cache_tag(key)}", "linux/arm64")
    desc = reg.pull_image(f"{repo}:{cache_tag(key)}", tmp_path / "got", "t")
    assert desc is not None and desc.digest == digest
    assert desc.platform == {"os": "linux", "architecture": "arm64"}
    got = Layout.open(tmp_path / "got").image("t")
    assert got.digest == digest and got.config["architecture"] == "arm64"
    assert got.manifest["config"]["mediaType"] == MT_CONFIG

    # a tag whose image is for another platform than the key says: refused, nothing kept
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "proj/dataset/t").mkdir(parents=True)
    (tmp_path / "proj/dataset/t/Dockerfile").write_text("FROM scratch\n")

    class _Task:
        id = "t"

    with pytest.raises(ToolError, match="linux/arm64 image, but its tag is the input key of a "
                       "linux/amd64 build"):
        build_mod._pull_cached(tmp_path / "proj", state, _Task(),  # type: ignore[arg-type]
                               key, repo, "linux/amd64", "buildah x", Store(tmp_path / "cas"))
    assert not (tmp_path / "proj/.gen").exists() and not list(state.iterdir())

    # an index (multi-platform) is not what gen build pushes: refused
    index_layout = Layout.create(tmp_path / "idx")
    layer = index_layout.put_bytes(b"\0" * 1024, MT_LAYER_TAR)
    one = index_layout.write_image([(layer, layer.digest)], {"config": {}}, "linux/amd64")
    index_layout.tag(index_layout.write_index([one]), "img")
    reg.push_layout(index_layout.root, "img", f"{repo}:index", all_platforms=True)
    with pytest.raises(ToolError, match="not a single-platform image manifest"):
        reg.pull_image(f"{repo}:index", tmp_path / "idx-got", "t")


def test_concurrent_fetches_of_one_blob_never_mix(registry: str, tmp_path: Path,
                                                  tools: None) -> None:
    """Threads of `gen build -j N` (or projects sharing a store) fetching the same base blob
    into the same place: each writes its own temp file, so what lands is whole and right."""
    import os
    import threading

    data = os.urandom(8 << 20)
    layout = Layout.create(tmp_path / "oci")
    layer = layout.put_bytes(data, MT_LAYER_TAR)
    desc = layout.write_image([(layer, layer.digest)], {"config": {}}, "linux/amd64")
    layout.tag(desc, "img")
    ref = f"{registry}/gen-test-pull/big:blob"
    reg.push_layout(layout.root, "img", ref, all_platforms=False)
    dst = tmp_path / "store" / "sha256" / layer.hex
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            reg.fetch_blob(ref, layer.digest, dst)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == layer.hex
    assert [p.name for p in dst.parent.iterdir()] == [layer.hex]  # no temp file left


def _private_registry(project: Path, name: str) -> str:
    """Point `project` at its own repository on the local registry (what it pushes and pulls
    there no other test reads); the registry is no input of any key or rendered file."""
    conf = project / "gen.yaml"
    text = conf.read_text()
    shared = next(line for line in text.splitlines() if line.startswith("registry: "))
    private = shared.split(" ", 1)[1] + f"-{name}-{uuid.uuid4().hex[:12]}"
    conf.write_text(text.replace(shared, f"registry: {private}"))
    return private


def test_verify_catches_a_poisoned_registry_cache(base_image: str, gen_cas: Path,
                                                  tmp_path: Path) -> None:
    """A hit trusts whoever pushed the tag; verify-reproducible is the backstop: it rebuilds
    from scratch and fails when the image in use is not what the inputs build. The poison
    goes to a repository of this test's own, never to the tag other projects use."""
    why = available_engines(REPO / ".gen" / "build").get("buildah")
    need(why is None, f"engine buildah is not usable: {why}")
    a = _fetched_copy(tmp_path / "a")
    _, [good] = build_project(a, only=[TASK], engine=project_engine(a, "buildah"))
    shared_tag = f"{good.image.repository}:{cache_tag(good.image.key)}"
    # the poison: the same image plus one empty layer, pushed under the key's tag
    src = Layout.open(a / good.image.layout)
    img = src.image(TASK)
    poison = Layout.create(tmp_path / "poison")
    for d in img.layers:
        link_or_copy(src.blob_path(d.digest), poison.blob_path(d.digest))
    extra = poison.put_bytes(b"\0" * 1024, MT_LAYER_TAR)
    config = {k: v for k, v in img.config.items() if k != "rootfs"}
    bad = poison.write_image([*zip(img.layers, img.diff_ids, strict=True),
                              (extra, extra.digest)], config, "linux/amd64")
    poison.tag(bad, TASK)
    e = _fetched_copy(tmp_path / "e")
    private = _private_registry(e, "poison")
    tag = f"{private}/{TASK}:{cache_tag(good.image.key)}"
    reg.push_layout(poison.root, TASK, tag, all_platforms=False)
    _, [pulled] = build_project(e, only=[TASK], engine=project_engine(e, "buildah"))
    assert pulled.cache == "registry" and pulled.image.digest == bad.digest
    result = verify_project(e, only=[TASK], engine=project_engine(e, "buildah"))
    [v] = result.verdicts
    assert v.identical and v.digest_a == good.image.digest  # the inputs build the good one
    assert v.recorded is not None and v.recorded["matches"] is False
    assert "is not what these inputs build" in v.recorded["why"] and not result.ok
    report = json.loads((e / ".gen/verify/report.json").read_text())
    assert report["ok"] is False and report["tasks"][TASK]["recorded"]["matches"] is False
    assert report["tasks"][TASK]["ok"] is False  # what gen release reads
    # an entry that cannot be used (here: an arm64 image under an amd64 key) is a miss:
    # built here, with a warning, and the push replaces the bad tag
    _push_image(tmp_path / "arm", tag, "linux/arm64")
    f = _fetched_copy(tmp_path / "f")
    (f / "gen.yaml").write_text((e / "gen.yaml").read_text())  # e's private repository
    _, [rebuilt] = build_project(f, only=[TASK], engine=project_engine(f, "buildah"))
    assert rebuilt.cache is None and not rebuilt.cached
    assert rebuilt.warning is not None and "was not used" in rebuilt.warning
    assert "linux/arm64 image" in rebuilt.warning
    assert rebuilt.image.digest == good.image.digest
    assert reg.resolve(tag).digest == good.image.digest  # the push replaced the bad tag
    assert reg.resolve(shared_tag).digest == good.image.digest  # never touched
    # the same check on project a: its recorded image is the one the inputs build ...
    project, locks = load_project(a), read_lockset(a)
    task = next(t for t in project.tasks if t.id == TASK)
    names, store = artifact_names(a), default_store(a)
    check = verify_mod._check_recorded(good.image, task, project, good.image.engine,
                                       v.digest_a, locks, names, store)
    assert check is not None and check["matches"] is True
    # ... and once an input changes, the record is stale: not compared, not a failure
    (a / "dataset" / TASK / "files" / "app" / "sample.log").write_text("changed\n")
    check = verify_mod._check_recorded(good.image, task, project, good.image.engine,
                                       v.digest_a, locks, names, store)
    assert check is not None and check["matches"] is None and "stale" in check["why"]
    other = verify_mod._check_recorded(good.image, task, project, "docker 1", v.digest_a,
                                       locks, names, store)
    assert other is not None and other["matches"] is None and "not comparable" in other["why"]
