"""Where a locked artifact comes from: the lock's URLs, the snapshot archive, the artifact
cache; the message when none serves it; the artifact index (gen cache push) and its place in
the release manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.core.cas import Store
from generator.lock import fetch
from generator.lock.artifact_cache import (
    ARTIFACT_TYPE,
    EMPTY_DIGEST,
    index_manifest,
    index_tag,
)
from generator.lock.fetch import (
    Artifact,
    Source,
    all_failed_message,
    artifact_sources,
    snapshot_url,
)
from generator.release.manifest import build_manifest, build_statement, parse_manifest

TS = "20261206T031500Z"
SNAP = "https://snapshot.debian.org"
CACHE = "127.0.0.1:5000/gen-example/artifacts"


def _deb(urls: tuple[str, ...], snapshot: str = TS, sha: str = "a" * 64) -> Artifact:
    return Artifact("deb", "x_1_amd64.deb", sha, urls, 3, "lockfiles/tasks/t/apt.lock",
                    "x=1 (amd64)", ("t",), snapshot)


# --------------------------------------------------------------------------------------
# snapshot_url
# --------------------------------------------------------------------------------------

def test_snapshot_url_of_the_security_archive() -> None:
    url = "http://deb.debian.org/debian-security/pool/updates/main/o/openssl/x.deb"
    assert snapshot_url(url, TS, SNAP) == ("https://snapshot.debian.org/archive/debian-security/"
                                           "20261206T031500Z/pool/updates/main/o/openssl/x.deb")


def test_snapshot_url_keeps_the_escaped_path_and_a_base_with_a_path() -> None:
    url = "http://deb.debian.org/debian/pool/main/t/tmux/tmux_3.3a-3%2bb1_amd64.deb"
    assert snapshot_url(url, TS, "http://127.0.0.1:9/snap/") == (
        f"http://127.0.0.1:9/snap/archive/debian/{TS}/pool/main/t/tmux/tmux_3.3a-3%2bb1_amd64.deb")


@pytest.mark.parametrize("url,ts", [
    ("http://deb.debian.org/debian/dists/bookworm/Release", TS),  # no pool/
    ("http://deb.debian.org/pool/main/x.deb", TS),  # no archive name before pool/
    ("/srv/mirror/debian/pool/main/x.deb", TS),  # a local path
    ("ftp://deb.debian.org/debian/pool/main/x.deb", TS),
    ("http://deb.debian.org/debian/pool/", TS),  # nothing after pool/
    ("http://deb.debian.org/debian/pool/main/x.deb", ""),  # the lock has no snapshot time
    ("http://deb.debian.org/debian/pool/main/x.deb", "2026-12-06"),
])
def test_no_snapshot_url(url: str, ts: str) -> None:
    assert snapshot_url(url, ts, SNAP) is None


_seg = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._+%", min_size=1,
               max_size=12).filter(lambda s: s not in (".", "..") and s != "pool")
_stamp = st.builds(lambda d, t: f"{d:08d}T{t:06d}Z", st.integers(19700101, 29991231),
                   st.integers(0, 235959))


@settings(max_examples=300)
@given(host=st.sampled_from(["deb.debian.org", "127.0.0.1:8080", "mirror.example"]),
       scheme=st.sampled_from(["http", "https"]), prefix=st.lists(_seg, min_size=1, max_size=3),
       rest=st.lists(_seg, min_size=1, max_size=5), ts=_stamp,
       base=st.sampled_from([SNAP, SNAP + "/", "http://127.0.0.1:1/s"]))
def test_snapshot_url_layout(host: str, scheme: str, prefix: list[str], rest: list[str],
                             ts: str, base: str) -> None:
    url = f"{scheme}://{host}/{'/'.join(prefix)}/pool/{'/'.join(rest)}"
    got = snapshot_url(url, ts, base)
    assert got == f"{base.rstrip('/')}/archive/{prefix[-1]}/{ts}/pool/{'/'.join(rest)}"


@given(ts=st.text(max_size=20).filter(lambda s: not fetch.SNAPSHOT_RE.match(s)))
def test_snapshot_url_refuses_a_malformed_time(ts: str) -> None:
    assert snapshot_url("http://deb.debian.org/debian/pool/main/x.deb", ts, SNAP) is None


# --------------------------------------------------------------------------------------
# Source order
# --------------------------------------------------------------------------------------

def test_sources_in_order_mirror_snapshot_cache() -> None:
    a = _deb(("http://deb.debian.org/debian/pool/main/x/x/x.deb",
              "http://mirror.example/debian/pool/main/x/x/x.deb",
              "http://other.example/ubuntu/pool/main/x/x/x.deb"))
    got = artifact_sources(a, snapshot_base=SNAP, cache=CACHE)
    assert [s.kind for s in got] == ["mirror"] * 3 + ["snapshot"] * 2 + ["cache"]
    assert [s.url for s in got[:3]] == list(a.urls)
    # the two debian/ URLs give one snapshot URL; ubuntu/ gives its own
    assert got[3].url == f"{SNAP}/archive/debian/{TS}/pool/main/x/x/x.deb"
    assert got[4].url == f"{SNAP}/archive/ubuntu/{TS}/pool/main/x/x/x.deb"
    assert got[5].url == f"http://127.0.0.1:5000/v2/gen-example/artifacts/blobs/sha256:{'a' * 64}"
    assert got[5].name == CACHE


def test_sources_without_snapshot_time_or_registry() -> None:
    a = _deb(("http://deb.debian.org/debian/pool/main/x/x/x.deb",), snapshot="")
    assert [s.kind for s in artifact_sources(a, snapshot_base=SNAP, cache=None)] == ["mirror"]
    b = _deb(("http://deb.debian.org/debian/pool/main/x/x/x.deb",))
    assert [s.kind for s in artifact_sources(b, snapshot_base="", cache=CACHE)] == [
        "mirror", "cache"]


def test_only_debs_have_a_snapshot_source() -> None:
    w = Artifact("wheel", "w-1-py3-none-any.whl", "b" * 64,
                 ("https://files.example/debian/pool/w.whl",), None,
                 "lockfiles/tasks/t/requirements.txt", "w==1", ("t",), TS)
    assert [s.kind for s in artifact_sources(w, snapshot_base=SNAP, cache=CACHE)] == [
        "mirror", "cache"]


def test_snapshot_base_env_overrides_gen_yaml(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    from generator.spec.model import DatasetConfig

    cfg = DatasetConfig(tmp_path, "p", "1", 0, ("linux/amd64",), None, "templates",
                        snapshot_base="https://snap.example")
    monkeypatch.delenv(fetch.SNAPSHOT_ENV, raising=False)
    assert fetch.snapshot_base(cfg) == "https://snap.example"
    monkeypatch.setenv(fetch.SNAPSHOT_ENV, "http://127.0.0.1:9/")
    assert fetch.snapshot_base(cfg) == "http://127.0.0.1:9"


# --------------------------------------------------------------------------------------
# Trying the sources
# --------------------------------------------------------------------------------------

def _file_artifact(tmp_path: Path, data: bytes) -> tuple[Artifact, Path]:
    src = tmp_path / "src.deb"
    src.write_bytes(data)
    a = Artifact("deb", "src.deb", hashlib.sha256(data).hexdigest(), (str(src),), len(data),
                 "lockfiles/tasks/t/apt.lock", "src=1 (amd64)", ("t",), TS)
    return a, src


def test_the_first_source_that_serves_the_locked_bytes_wins(tmp_path: Path) -> None:
    a, src = _file_artifact(tmp_path, b"the locked bytes")
    wrong = tmp_path / "wrong.deb"
    wrong.write_bytes(b"other bytes")
    store = Store(tmp_path / "cas")
    sources = [Source("mirror", str(tmp_path / "gone.deb")), Source("snapshot", str(wrong)),
               Source("cache", str(src), CACHE)]
    state, n, kind = fetch._fetch_one(a, store, sources)
    assert (state, n, kind) == ("downloaded", len(b"the locked bytes"), "cache")
    assert store.path(a.sha256).read_bytes() == b"the locked bytes"
    assert not list((tmp_path / "cas" / "sha256").glob(".partial-*"))
    assert fetch._fetch_one(a, store, []) == ("present", 0, "store")


def test_every_source_failing_names_each_one(tmp_path: Path) -> None:
    a, _ = _file_artifact(tmp_path, b"x")
    wrong = tmp_path / "wrong.deb"
    wrong.write_bytes(b"y")
    sources = [Source("mirror", str(tmp_path / "gone.deb")), Source("snapshot", str(wrong))]
    with pytest.raises(fetch._Failed) as info:
        fetch._fetch_one(a, Store(tmp_path / "cas"), sources)
    msg = str(info.value)
    assert msg.startswith("deb src.deb (lockfiles/tasks/t/apt.lock: src=1 (amd64)): every "
                          "source failed: ")
    assert f"mirror {tmp_path / 'gone.deb'}: the file is missing" in msg
    assert f"snapshot {wrong}: sha256 mismatch" in msg
    assert not list((tmp_path / "cas" / "sha256").glob(".partial-*"))


def test_all_failed_message_is_one_line_with_the_fix() -> None:
    a = _deb(("http://deb.debian.org/debian/pool/main/x/x/x.deb",))
    tried = [(s, why) for s, why in zip(
        artifact_sources(a, snapshot_base=SNAP, cache=CACHE),
        ["HTTP 404 (gone from the mirror)", "unreachable: [Errno -2] Name or service not known",
         "HTTP 404 (not in the artifact cache)"], strict=True)]
    msg = all_failed_message(a, tried)
    assert "\n" not in msg
    assert msg == (
        "deb x_1_amd64.deb (lockfiles/tasks/t/apt.lock: x=1 (amd64)): every source failed: "
        "mirror http://deb.debian.org/debian/pool/main/x/x/x.deb: HTTP 404 (gone from the "
        f"mirror); snapshot {SNAP}/archive/debian/{TS}/pool/main/x/x/x.deb: unreachable: "
        "[Errno -2] Name or service not known; cache 127.0.0.1:5000/gen-example/artifacts: "
        "HTTP 404 (not in the artifact cache) (fix: run `gen lock --update` to re-pin it, or "
        "`gen cache push` from a machine that has it)")
    assert "gen cache push" in all_failed_message(a, [])


# --------------------------------------------------------------------------------------
# The artifact index (gen cache push) and the release manifest
# --------------------------------------------------------------------------------------

_arts = st.lists(st.tuples(st.sampled_from(["deb", "wheel", "source"]),
                           st.text("abcxyz-_.0123", min_size=1, max_size=8),
                           st.text("0123456789abcdef", min_size=64, max_size=64),
                           st.integers(0, 1 << 40)), max_size=8, unique_by=lambda t: t[2])


@given(arts=_arts, seed=st.randoms())
def test_index_manifest_is_a_pure_function_of_the_artifacts(arts: list[tuple[str, str, str, int]],
                                                            seed: object) -> None:
    entries = [(Artifact(k, f, h, (), None, "l", "e"), n) for k, f, h, n in arts]
    body = index_manifest(entries)
    shuffled = list(entries) + list(entries[:2])  # order and duplicates do not matter
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    assert index_manifest(shuffled) == body
    m = json.loads(body)
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert m["artifactType"] == ARTIFACT_TYPE
    assert m["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                           "digest": EMPTY_DIGEST, "size": 2}
    assert "sha256:" + hashlib.sha256(b"{}").hexdigest() == EMPTY_DIGEST
    assert len(m["layers"]) == len(arts)
    for layer in m["layers"]:
        kind, fname, hexd, size = next(t for t in arts if f"sha256:{t[2]}" == layer["digest"])
        assert layer == {"mediaType": f"application/vnd.gen.artifact.{kind}",
                         "digest": f"sha256:{hexd}", "size": size,
                         "annotations": {"org.opencontainers.image.title": fname}}


@given(arts=_arts, seed=st.randoms())
def test_plan_digest_is_the_set_of_artifacts(arts: list[tuple[str, str, str, int]],
                                             seed: object) -> None:
    """What an index was pushed for: order, duplicates and names do not count, the bytes do."""
    from generator.lock.artifact_cache import plan_digest

    entries = [Artifact(k, f, h, (), None, "l", "e") for k, f, h, _n in arts]
    digest = plan_digest(entries)
    shuffled = entries + entries[:1]
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    assert plan_digest(shuffled) == digest
    assert plan_digest([Artifact("deb", "renamed", a.sha256, (), None, "x", "y")
                        for a in entries]) == digest
    if entries:
        assert plan_digest(entries[1:]) != digest
        other = entries[0].sha256[:-1] + ("0" if entries[0].sha256[-1] != "0" else "1")
        changed = [Artifact("deb", "f", other, (), None, "l", "e"), *entries[1:]]
        assert plan_digest(changed) != digest


@pytest.mark.parametrize("version,tag", [("0.1.0", "0.1.0"), ("1.0+local", "1.0_local"),
                                         ("-rc", "v-rc"), ("v2/x", "v2_x")])
def test_index_tag(version: str, tag: str) -> None:
    assert index_tag(version) == tag


def test_release_manifest_carries_the_artifact_index() -> None:
    digest = "sha256:" + "c" * 64
    kwargs = {"name": "d", "version": "1", "platforms": ["linux/amd64"],
              "source_date_epoch": 0, "files": {}}
    plain = build_manifest(**kwargs)  # type: ignore[arg-type]
    assert "artifact_index" not in plain.to_json()
    m = build_manifest(**kwargs, artifact_index={"repository": CACHE,  # type: ignore[arg-type]
                                                 "digest": digest})
    body = m.to_bytes()
    assert json.loads(body)["artifact_index"] == {"repository": CACHE, "digest": digest}
    assert parse_manifest(body).artifact_index == {"repository": CACHE, "digest": digest}
    st_ = json.loads(build_statement(m, body, env={}))
    deps = st_["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert {"name": "artifact_index", "uri": f"oci://{CACHE}@{digest}",
            "digest": {"sha256": "c" * 64},
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "annotations": {"artifactType": ARTIFACT_TYPE}} in deps
    from generator.core.errors import InputError

    with pytest.raises(InputError, match="bad artifact index"):
        build_manifest(**kwargs, artifact_index={"repository": CACHE,  # type: ignore[arg-type]
                                                 "digest": "sha256:nope"})
