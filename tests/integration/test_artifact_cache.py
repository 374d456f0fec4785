"""Artifacts that outlive the mirror: `gen fetch` falls back from the lock's URLs to the
snapshot archive to the project's artifact cache in its registry (`gen cache push`).

The mirror and the snapshot archive are loopback HTTP servers over directories of real
.debs downloaded from deb.debian.org; the registry is the real local one (no mocks).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.core.cas import Store
from generator.core.errors import CheckFailed
from generator.image import registry
from generator.lock import artifact_cache
from generator.lock.fetch import Artifact, fetch_artifacts, plan
from tests.integration.conftest import REPO, closed_port, copy_example, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.network]

TS = "20250101T000000Z"
# small, long-lived bookworm .debs (name prefix in the example's locks)
SMALL = ("libkeyutils1", "libpython3-stdlib", "liberror-perl")


def _small_debs() -> list[tuple[str, str, int, str, str]]:
    """(filename, sha256, size, the lock's URL, entry) of a few small .debs of the example."""
    out: dict[str, tuple[str, str, int, str, str]] = {}
    for lock in sorted((REPO / "lockfiles" / "tasks").glob("*/apt.lock")):
        for line in lock.read_text().splitlines():
            cols = line.split("\t")
            if line.startswith("#") or len(cols) < 7 or cols[0] not in SMALL:
                continue
            out[cols[0]] = (cols[5], cols[3], int(cols[4]), cols[6].split()[0],
                            f"{cols[0]}={cols[1]} ({cols[2]})")
    return [out[n] for n in SMALL if n in out]


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, int, str, Path]]:
    """The small .debs, downloaded once from deb.debian.org and checked against the lock."""
    found = _small_debs()
    need(len(found) >= 2, "the example's apt.locks name none of " + ", ".join(SMALL))
    d = tmp_path_factory.mktemp("debs")
    out = []
    for fname, sha, size, url, _entry in found:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        except OSError as exc:
            need(False, f"deb.debian.org does not serve {url}: {exc}")
        if hashlib.sha256(data).hexdigest() != sha or len(data) != size:
            pytest.skip(f"{url} no longer has the locked bytes (the mirror moved)")
        (d / fname).write_bytes(data)
        out.append((fname, sha, size, urllib.parse.urlsplit(url).path, d / fname))
    return out


def _project(path: Path, registry_ref: str, snapshot_base: str) -> Path:
    path.mkdir(parents=True)
    (path / "gen.yaml").write_text(yaml.safe_dump({
        "name": "ac-test", "version": "1.0", "source_date_epoch": 1700000000,
        "platforms": ["linux/amd64"], "registry": registry_ref, "snapshot_base": snapshot_base}))
    return path


def test_fetch_falls_back_mirror_snapshot_cache(registry: str, debs: list[tuple[str, str, int,
                                                                               str, Path]],
                                                http_dir: object, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    serve = http_dir
    monkeypatch.delenv("GEN_SNAPSHOT_BASE", raising=False)
    mirror, snap = tmp_path / "mirror", tmp_path / "snap"
    mirror_url, snap_url = serve(mirror), serve(snap)  # type: ignore[operator]
    arts = []
    for fname, sha, size, path, dpath in debs:
        rel = urllib.parse.unquote(path)  # /debian/pool/main/...: on disk unescaped
        prefix, rest = rel.split("/pool/", 1)
        archive = prefix.rsplit("/", 1)[-1]  # debian, debian-security
        for where in (mirror / rel.lstrip("/"), snap / "archive" / archive / TS / "pool" / rest):
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_bytes(dpath.read_bytes())
        arts.append(Artifact("deb", fname, sha, (f"{mirror_url}{path}",), size,
                             "lockfiles/tasks/t/apt.lock", f"{fname} (amd64)", ("t",), TS))
    repo_root = f"{registry}/gen-test-ac-{uuid.uuid4().hex[:12]}"
    project = _project(tmp_path / "p", repo_root, snap_url)

    got = fetch_artifacts(project, arts, store=Store(tmp_path / "cas1"))
    assert got.sources == {"mirror": len(arts), "snapshot": 0, "cache": 0}
    assert {a["source"] for a in got.artifacts} == {"mirror"}

    # the first .deb leaves the mirror: the snapshot archive serves it
    gone = arts[0]
    (mirror / urllib.parse.unquote(urllib.parse.urlsplit(gone.urls[0]).path).lstrip("/")).unlink()
    got = fetch_artifacts(project, arts, store=Store(tmp_path / "cas2"))
    by_name = {a["filename"]: a["source"] for a in got.artifacts}
    assert by_name[gone.filename] == "snapshot"
    assert got.sources == {"mirror": len(arts) - 1, "snapshot": 1, "cache": 0}

    # and the snapshot archive too; the cache is empty: every source failed, one line
    for f in snap.rglob(gone.filename):
        f.unlink()
    with pytest.raises(CheckFailed) as info:
        fetch_artifacts(project, arts, store=Store(tmp_path / "cas3"))
    msg = info.value.one_line()
    assert info.value.exit_code == 1 and "\n" not in msg
    assert msg.startswith(f"deb {gone.filename} (lockfiles/tasks/t/apt.lock: ")
    assert "mirror http://127.0.0.1:" in msg and "HTTP 404 (gone from the mirror)" in msg
    assert f"snapshot {snap_url}/archive/" in msg and f"/{TS}/pool/" in msg
    assert "not in the snapshot archive" in msg
    assert f"cache {repo_root}/artifacts: HTTP 404 (not in the artifact cache)" in msg
    assert "gen lock --update" in msg and "gen cache push" in msg
    assert not list((tmp_path / "cas3" / "sha256").glob(".partial-*"))

    # a registry that does not answer is one more failed source
    dead = _project(tmp_path / "dead", f"127.0.0.1:{closed_port()}/x", snap_url)
    with pytest.raises(CheckFailed) as info:
        fetch_artifacts(dead, [gone], store=Store(tmp_path / "cas3"))
    assert "cache 127.0.0.1:" in info.value.one_line()
    assert "unreachable" in info.value.one_line()

    # gen cache push from the store that has it: now the cache serves it
    pushed = artifact_cache.push(project, store=Store(tmp_path / "cas1"), artifacts=arts)
    assert pushed.repository == f"{repo_root}/artifacts"
    assert sorted(pushed.uploaded) == sorted(a.filename for a in arts) and not pushed.present
    again = artifact_cache.push(project, store=Store(tmp_path / "cas1"), artifacts=arts)
    assert again.digest == pushed.digest and not again.uploaded  # HEAD: nothing re-uploaded
    got = fetch_artifacts(project, arts, store=Store(tmp_path / "cas4"))
    assert {a["filename"]: a["source"] for a in got.artifacts}[gone.filename] == "cache"
    assert Store(tmp_path / "cas4").has(gone.sha256, verify=True)

    # the index: the tag, artifacts.json, the layers
    record = json.loads((project / artifact_cache.INDEX_FILE).read_text())
    assert record["digest"] == pushed.digest and record["artifacts"] == len(arts)
    found = registry_manifest(f"{pushed.repository}:{pushed.tag}")
    assert found["digest"] == pushed.digest
    body = found["manifest"]
    assert body["artifactType"] == artifact_cache.ARTIFACT_TYPE
    assert {lay["annotations"]["org.opencontainers.image.title"] for lay in body["layers"]} == \
        {a.filename for a in arts}
    assert artifact_cache.recorded_index(project, artifacts=arts) == (
        {"repository": pushed.repository, "digest": pushed.digest}, "")
    st = artifact_cache.status(project, artifacts=arts)
    assert st.missing == [] and st.index_present and st.index_current
    # the locks move on (one artifact more or less): the index no longer covers them
    fewer = arts[1:]
    index, why = artifact_cache.recorded_index(project, artifacts=fewer)
    assert index is None and "other locks" in why and "gen cache push" in why
    assert not artifact_cache.status(project, artifacts=fewer).index_current


def registry_manifest(ref: str) -> dict[str, Any]:
    found = registry.find_manifest(ref)
    assert found is not None, ref
    return {"digest": found[0], "manifest": found[3]}


def _example_copy(dst: Path, registry_ref: str) -> Path:
    project = copy_example(dst)
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["registry"] = registry_ref
    if cfg.get("bases") and not (project / "lockfiles" / "bases").is_dir():
        cfg.pop("bases")  # the base lock is not written yet: test the tasks' artifacts
    # no coverage.py wheel: which wheel file a lock means is read from PyPI's index, so a
    # wheel always comes from PyPI while it answers (these tests take the mirrors away)
    cfg.pop("strength", None)
    shutil.rmtree(project / "lockfiles" / "tools", ignore_errors=True)
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return project


@pytest.mark.slow
def test_cache_push_then_fetch_without_mirror(registry: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEN_SNAPSHOT_BASE", raising=False)
    repo_root = f"{registry}/gen-test-ac-{uuid.uuid4().hex[:12]}"
    first = _example_copy(tmp_path / "first", repo_root)

    proc = run_gen("cache", "status", "--project", str(first))
    assert proc.returncode == 1, proc.stderr  # nothing pushed to this repository yet
    assert "missing" in proc.stdout and "gen cache push" in proc.stdout

    monkeypatch.setenv("GEN_CAS", str(tmp_path / "cas-first"))
    proc = run_gen("cache", "push", "--json", "--project", str(first))
    assert proc.returncode == 0, proc.stderr
    pushed = json.loads(proc.stdout)
    arts = plan(first)
    assert pushed["artifacts"] == len({a.sha256 for a in arts}) > 0
    assert pushed["repository"] == f"{repo_root}/artifacts" and pushed["tag"] == "0.1.0"
    record = json.loads((first / artifact_cache.INDEX_FILE).read_text())
    assert record["digest"] == pushed["digest"]
    proc = run_gen("cache", "push", "--check", "--project", str(first))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "in the registry" in proc.stdout

    # the release names the artifact index
    from generator.release.release import artifact_index, collect_manifest

    index, note = artifact_index(first)
    assert note == ""
    assert index == {"repository": f"{repo_root}/artifacts", "digest": pushed["digest"]}
    manifest, _, _ = collect_manifest(first, artifact_index=index)
    assert json.loads(manifest.to_bytes())["artifact_index"] == index
    # a lock changes after the push: status fails, the release records no index
    req = next((first / "lockfiles" / "tasks").glob("*/apt.lock"))
    saved = req.read_bytes()
    *head, last = saved.decode().splitlines(keepends=True)
    cols = last.split("\t")
    cols[3] = "0" * 64  # a re-lock to another build of the package
    req.write_text("".join(head) + "\t".join(cols))
    proc = run_gen("cache", "status", "--project", str(first))
    assert proc.returncode == 1 and "other locks" in proc.stdout, proc.stdout
    assert artifact_index(first)[0] is None and "other locks" in artifact_index(first)[1]
    req.write_bytes(saved)
    assert artifact_index(first) == (index, "")
    (first / artifact_cache.INDEX_FILE).unlink()
    assert artifact_index(first)[0] is None and "gen cache push" in artifact_index(first)[1]

    # a second copy whose mirror, snapshot archive and project files are gone
    second = _example_copy(tmp_path / "second", repo_root)
    dead = f"http://127.0.0.1:{closed_port()}"
    cfg = yaml.safe_load((second / "gen.yaml").read_text())
    cfg["snapshot_base"] = dead
    (second / "gen.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    for lock in (second / "lockfiles").rglob("*.lock"):
        lines = []
        text = lock.read_text()
        if lock.name == "apt.lock" and "\n# snapshot:" not in text:
            # a snapshot time, so the (dead) snapshot archive is tried too
            text = text.replace("\n# input:", f"\n# snapshot: {TS}\n# input:", 1)
        for line in text.splitlines():
            cols = line.split("\t")
            if not line.startswith("#") and len(cols) >= 7 and "/pool/" in cols[6]:
                cols[6] = " ".join(f"{dead}/debian/pool/{u.split('/pool/', 1)[1]}"
                                   for u in cols[6].split())
                line = "\t".join(cols)
            lines.append(line)
        lock.write_text("\n".join(lines) + "\n")
    sources = [a for a in plan(second) if a.kind == "source"]
    for a in sources:
        for u in a.urls:
            if not urllib.parse.urlsplit(u).scheme:
                Path(u).unlink()  # the project's own copy is gone too
    monkeypatch.setenv("GEN_CAS", str(tmp_path / "cas-second"))
    proc = run_gen("fetch", "--json", "--project", str(second))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {a["source"] for a in report["artifacts"]} == {"cache"}
    assert report["sources"]["cache"] == len(report["artifacts"]) == len(arts)
    store = Store(tmp_path / "cas-second")
    locked = {a.sha256 for a in arts}
    assert {a["sha256"] for a in report["artifacts"]} == locked
    for hexd in locked:
        data = store.path(hexd).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hexd
    # the text report counts the sources
    monkeypatch.setenv("GEN_CAS", str(tmp_path / "cas-third"))
    proc = run_gen("fetch", "--project", str(second))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(arts)} from the artifact cache" in proc.stdout
