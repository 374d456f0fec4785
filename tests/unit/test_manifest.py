"""Unit tests of the release manifest, archive, Statement and key-mode DSSE (pure, offline)."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.core.canonical import canonical
from generator.core.errors import CheckFailed, InputError
from generator.release.manifest import (
    BUILD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    FileEntry,
    ManifestError,
    archive_name,
    build_archive,
    build_manifest,
    build_statement,
    compare_files,
    hash_archive,
    hash_tree,
    parse_manifest,
    sha256_hex,
)
from generator.release.sign import generate_key, pae, sign_with_key, verify_bundle


def _tree(root: Path, files: dict[str, tuple[bytes, int]]) -> None:
    for rel, (data, mode) in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(mode)


def _manifest(files: dict[str, FileEntry], **kw: object) -> bytes:
    return build_manifest(name="demo", version="1.0", platforms=["linux/amd64"],
                          source_date_epoch=1700000000, files=files, **kw).to_bytes()  # type: ignore[arg-type]


def test_pae_vector() -> None:
    # The DSSE spec's example.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_hash_tree(tmp_path: Path) -> None:
    _tree(tmp_path, {"a/b.txt": (b"hi\n", 0o644), "run.sh": (b"#!/bin/sh\n", 0o755),
                     "a/c/d": (b"", 0o600)})
    got = hash_tree(tmp_path)
    assert list(got) == ["a/b.txt", "a/c/d", "run.sh"]
    assert got["a/b.txt"] == FileEntry(sha256_hex(b"hi\n"), 3, "0644")
    assert got["run.sh"].mode == "0755" and got["a/c/d"].mode == "0644"


def test_hash_tree_refuses_symlinks_and_fifos(tmp_path: Path) -> None:
    _tree(tmp_path, {"a.txt": (b"x", 0o644)})
    os.symlink("a.txt", tmp_path / "link")
    with pytest.raises(InputError, match="symlinks are not allowed"):
        hash_tree(tmp_path)
    (tmp_path / "link").unlink()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match="only regular files"):
        hash_tree(tmp_path)


def test_compare_files() -> None:
    a = FileEntry("a" * 64, 1, "0644")
    b = FileEntry("b" * 64, 1, "0644")
    x = FileEntry("a" * 64, 1, "0755")
    problems = compare_files({"keep": a, "gone": a, "edit": a, "mode": a},
                             {"keep": a, "new": a, "edit": b, "mode": x}, "ds")
    assert problems == [
        "ds/edit: changed (sha256 bbbbbbbbbbbb…, manifest says aaaaaaaaaaaa…)",
        "ds/gone: missing (listed in the manifest)",
        "ds/mode: mode 0755, manifest says 0644",
        "ds/new: extra file (not in the manifest)",
    ]


def test_manifest_is_canonical_and_round_trips() -> None:
    files = {"t/b": FileEntry("b" * 64, 2, "0755"), "t/a": FileEntry("a" * 64, 1, "0644")}
    data = _manifest(files, images={"r/x": {"linux/amd64": "sha256:" + "c" * 64}},
                     lockfiles={"lockfiles/images.lock": "sha256:" + "d" * 64},
                     reports={"verify": "sha256:" + "e" * 64},
                     archive={"name": "demo-1.0.tar", "sha256": "sha256:" + "f" * 64, "size": 3})
    assert canonical(json.loads(data)) == data
    assert b" " not in data  # JCS: no insignificant whitespace
    m = parse_manifest(data)
    assert m.files == files and m.to_bytes() == data
    assert m.images == {"r/x": {"linux/amd64": "sha256:" + "c" * 64}}


@pytest.mark.parametrize("mutate", [
    lambda d: json.dumps(d, indent=1).encode(),  # not canonical
    lambda d: canonical({**d, "manifest_version": 2}),
    lambda d: canonical({**d, "files": {"../etc/passwd": d["files"]["t/a"]}}),
    lambda d: canonical({**d, "files": {"/abs": d["files"]["t/a"]}}),
    lambda d: canonical({**d, "images": {"r": {"linux/amd64": "latest"}}}),
    lambda d: canonical({**d, "archive": {"name": "../x.tar", "sha256": "sha256:" + "0" * 64}}),
    lambda d: canonical({k: v for k, v in d.items() if k != "dataset"}),
])
def test_parse_manifest_rejects(mutate: object) -> None:
    d = json.loads(_manifest({"t/a": FileEntry("a" * 64, 1, "0644")}))
    with pytest.raises(ManifestError):
        parse_manifest(mutate(d))  # type: ignore[operator]


def test_build_manifest_rejects_undigested_image() -> None:
    with pytest.raises(InputError, match="no sha256 digest"):
        _manifest({}, images={"r": {"linux/amd64": "r:latest"}})


def test_archive_name() -> None:
    assert archive_name("demo", "1.0.0") == "demo-1.0.0.tar"
    assert archive_name("demo", "1.0/rc 1") == "demo-1.0_rc_1.tar"


names = st.text(alphabet="abcxyz019_.-", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))
trees = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map("/".join),
    st.tuples(st.binary(max_size=64), st.sampled_from([0o644, 0o755])),
    min_size=1, max_size=6,
).filter(lambda t: not any(a != b and b.startswith(a + "/") for a in t for b in t))


@settings(max_examples=40, deadline=None)
@given(trees)
def test_archive_is_deterministic_and_round_trips(tmp_path_factory: pytest.TempPathFactory,
                                                  tree: dict[str, tuple[bytes, int]]) -> None:
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    _tree(one, tree)
    _tree(two, dict(reversed(list(tree.items()))))  # created in another order
    files = hash_tree(one)
    assert hash_tree(two) == files
    a = build_archive(one, files, "demo-1.0.tar", 1700000000)
    assert build_archive(two, files, "demo-1.0.tar", 1700000000) == a
    members, problems = hash_archive(a, "demo-1.0.tar")
    assert problems == [] and members == files


def test_build_archive_notices_a_change(tmp_path: Path) -> None:
    _tree(tmp_path, {"a": (b"1", 0o644)})
    files = hash_tree(tmp_path)
    (tmp_path / "a").write_bytes(b"2")
    with pytest.raises(InputError, match="changed while the release was being made"):
        build_archive(tmp_path, files, "d.tar", 0)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for info, data in members:
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_hash_archive_flags_bad_members() -> None:
    link = tarfile.TarInfo("d/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    data = _tar([(tarfile.TarInfo("d/ok"), b"x"), (link, b""), (tarfile.TarInfo("e/x"), b""),
                 (tarfile.TarInfo("d/../../x"), b""), (tarfile.TarInfo("d/ok"), b"y")])
    members, problems = hash_archive(data, "d.tar")
    assert list(members) == ["ok"]
    assert any("is not a regular file" in p for p in problems)
    assert any("outside 'd/'" in p for p in problems)
    assert any("unsafe member path" in p for p in problems)
    assert any("duplicate member" in p for p in problems)
    assert hash_archive(b"not a tar", "d.tar")[1][0].startswith("d.tar: not a readable tar")


def test_statement_subjects_and_predicate() -> None:
    files = {"t/a": FileEntry("a" * 64, 1, "0644")}
    m = build_manifest(name="demo", version="1.0", platforms=["linux/amd64"],
                       source_date_epoch=5, files=files,
                       images={"reg/b": {"linux/amd64": "sha256:" + "2" * 64},
                               "reg/a": {"linux/amd64": "sha256:" + "1" * 64,
                                         "linux/arm64": "sha256:" + "3" * 64}},
                       lockfiles={"lockfiles/x.lock": "sha256:" + "4" * 64},
                       archive={"name": "demo-1.0.tar", "sha256": "sha256:" + "5" * 64})
    mb = m.to_bytes()
    raw = build_statement(m, mb, env={})
    assert raw == build_statement(m, mb, env={}) and canonical(json.loads(raw)) == raw
    s = json.loads(raw)
    assert s["_type"] == STATEMENT_TYPE and s["predicateType"] == PREDICATE_TYPE
    assert s["subject"] == [
        {"name": "manifest.json", "digest": {"sha256": sha256_hex(mb)}},
        {"name": "reg/a", "digest": {"sha256": "1" * 64}},
        {"name": "reg/a", "digest": {"sha256": "3" * 64}},
        {"name": "reg/b", "digest": {"sha256": "2" * 64}},
    ]
    bd = s["predicate"]["buildDefinition"]
    assert bd["buildType"] == BUILD_TYPE
    assert bd["internalParameters"] == {"generatorVersion": m.generator_version,
                                        "sourceDateEpoch": 5}
    assert bd["resolvedDependencies"] == [{"name": "lockfiles/x.lock",
                                           "digest": {"sha256": "4" * 64}}]
    assert s["predicate"]["runDetails"]["byproducts"] == [
        {"name": "demo-1.0.tar", "digest": {"sha256": "5" * 64}}]
    assert "metadata" not in s["predicate"]["runDetails"]  # nothing from outside CI


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_key_bundle_round_trip(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives import serialization

    monkeypatch.delenv("GEN_KEY_PASSWORD", raising=False)
    priv_pem, pub_pem = generate_key(kind)  # type: ignore[arg-type]
    priv = serialization.load_pem_private_key(priv_pem, None)
    pub = serialization.load_pem_public_key(pub_pem)
    bundle, info = sign_with_key(b'{"x":1}', priv)  # type: ignore[arg-type]
    ptype, payload, who = verify_bundle(bundle, where="b", keys=[pub])  # type: ignore[list-item]
    assert (ptype, payload) == ("application/vnd.in-toto+json", b'{"x":1}')
    assert who.key_hint == info.key_hint
    b = json.loads(bundle)
    b["dsseEnvelope"]["signatures"].append(b["dsseEnvelope"]["signatures"][0])
    with pytest.raises(CheckFailed, match="exactly one signature"):
        verify_bundle(json.dumps(b).encode(), where="b", keys=[pub])  # type: ignore[list-item]
    b = json.loads(bundle)
    b["dsseEnvelope"]["payloadType"] = "text/plain"  # the type is signed too (PAE)
    with pytest.raises(CheckFailed, match="does not verify"):
        verify_bundle(json.dumps(b).encode(), where="b", keys=[pub])  # type: ignore[list-item]
    b = json.loads(bundle)
    b["dsseEnvelope"]["payload"] = base64.b64encode(b'{"x":2}').decode()
    with pytest.raises(CheckFailed, match="does not verify"):
        verify_bundle(json.dumps(b).encode(), where="b", keys=[pub])  # type: ignore[list-item]
