"""Keyless `gen release` end to end with the real sigstore client against the local service.

Signing talks to the service on 127.0.0.1 (Fulcio, Rekor v1); every verification runs with the
network blocked (`no_network`, and once in a real empty network namespace) against the trusted
root the *verifier* supplies. Nothing inside sigstore is patched.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.release.release_support import block_network, edit_bundle, flip_b64, gen, need
from tests.release.sigstore_double import LocalSigstore

pytestmark = pytest.mark.integration

REPO_ID = "gen-datasets/example"
REF = "refs/tags/v1.0.0"
SAN = f"https://github.com/{REPO_ID}/.github/workflows/release.yml@{REF}"
GH = "https://token.actions.githubusercontent.com"


def sign(project: Path, out: Path, trust_config: Path, token: str) -> None:
    r = gen("release", "--project", str(project), "--sign", "keyless",
            "--trust-config", str(trust_config), "--identity-token", token, "--out", str(out))
    assert r.code == 0, r.err


@pytest.fixture
def release(project: Path, local_sigstore: LocalSigstore, trust_config: Path,
            tmp_path: Path) -> Path:
    out = tmp_path / "release"
    sign(project, out, trust_config, local_sigstore.mint_token(repository=REPO_ID, ref=REF))
    return out


def verify(release: Path, trust_config: Path, *identity: str) -> tuple[int, str]:
    r = gen("verify-release", str(release), *identity, "--trust-config", str(trust_config))
    return r.code, r.err + r.out


GITHUB_ID = ("--repository", REPO_ID, "--ref", REF)


def test_keyless_release_verifies_offline(release: Path, trust_config: Path, project: Path,
                                          no_network: None) -> None:
    r = gen("verify-release", str(release), *GITHUB_ID, "--workflow",
            ".github/workflows/release.yml", "--trust-config", str(trust_config),
            "--dataset", str(project / "dataset"), "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["signer"]["mode"] == "keyless"
    assert data["signer"]["identity"] == SAN and data["signer"]["issuer"] == GH
    assert data["signer"]["log_index"] >= 5  # the service's log is pre-seeded
    assert data["checked"] == ["signature", "archive", "dataset"]
    # Exact identity + issuer works as well.
    code, text = verify(release, trust_config, "--cert-identity", SAN, "--cert-oidc-issuer", GH)
    assert code == 0, text


def test_bundle_shape(release: Path) -> None:
    b = json.loads((release / "manifest.json.sigstore.json").read_text())
    assert b["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    vm = b["verificationMaterial"]
    assert "certificate" in vm and len(vm["tlogEntries"]) == 1
    entry = vm["tlogEntries"][0]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert entry["inclusionPromise"]["signedEntryTimestamp"]
    assert entry["inclusionProof"]["hashes"] and entry["inclusionProof"]["checkpoint"]
    assert b["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_verify_in_empty_network_namespace(release: Path, trust_config: Path) -> None:
    """The real CLI in a process that has no network at all (`unshare --net`)."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--net", "true"], capture_output=True) \
        if unshare else None
    need(probe is not None and probe.returncode == 0,
         "unshare --net is not available (needs root or user namespaces)")
    cmd = [unshare or "unshare", "--net", sys.executable, "-m", "generator", "verify-release",
           str(release), *GITHUB_ID, "--trust-config", str(trust_config)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert p.returncode == 0, p.stderr
    assert "verified" in p.stdout


def test_ambient_github_credentials(project: Path, local_sigstore: LocalSigstore,
                                    trust_config: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No --identity-token: the sigstore client finds the GitHub Actions OIDC endpoint."""
    for var in ("GEN_IDENTITY_TOKEN", "SIGSTORE_IDENTITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{local_sigstore.url}/_gha_token")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", local_sigstore.gha_request_token)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/datasets")
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v2.0.0")
    monkeypatch.setenv("GITHUB_SHA", "1" * 40)
    monkeypatch.setenv("GITHUB_WORKFLOW_REF",
                       "acme/datasets/.github/workflows/release.yml@refs/tags/v2.0.0")
    monkeypatch.setenv("GITHUB_RUN_ID", "7")
    local_sigstore.gha_claims = {"repository": "acme/datasets", "ref": "refs/tags/v2.0.0"}
    out = tmp_path / "rel"
    try:
        r = gen("release", "--project", str(project), "--sign", "keyless",
                "--trust-config", str(trust_config), "--out", str(out))
    finally:
        local_sigstore.gha_claims = {}
    assert r.code == 0, r.err
    assert "GET /_gha_token" in local_sigstore.requests
    code, text = verify(out, trust_config, "--repository", "acme/datasets",
                        "--ref", "refs/tags/v2.0.0")
    assert code == 0, text
    b = json.loads((out / "manifest.json.sigstore.json").read_text())
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    pred = st["predicate"]
    assert pred["buildDefinition"]["externalParameters"]["source"] == {
        "repository": "https://github.com/acme/datasets", "ref": "refs/tags/v2.0.0"}
    assert {"uri": "git+https://github.com/acme/datasets@refs/tags/v2.0.0",
            "digest": {"gitCommit": "1" * 40}} in pred["buildDefinition"]["resolvedDependencies"]
    assert pred["runDetails"]["builder"]["id"] == (
        "https://github.com/acme/datasets/.github/workflows/release.yml@refs/tags/v2.0.0")
    assert pred["runDetails"]["metadata"]["invocationId"].endswith("/actions/runs/7/attempts/1")


def test_no_token_is_a_usage_error(project: Path, trust_config: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEN_IDENTITY_TOKEN", "SIGSTORE_IDENTITY_TOKEN", "GITHUB_ACTIONS",
                "SIGSTORE_ID_TOKEN", "GITLAB_CI", "BUILDKITE", "CIRCLECI"):
        monkeypatch.delenv(var, raising=False)
    r = gen("release", "--project", str(project), "--sign", "keyless",
            "--trust-config", str(trust_config), "--out", str(tmp_path / "r"))
    assert r.code == 2 and "id-token: write" in r.err


# --- tamper cases: each exits 1 with the reason -----------------------------------------

@pytest.mark.parametrize(("identity", "reason"), [
    (("--repository", "gen-datasets/other", "--ref", REF),
     "OIDCSourceRepositoryURI does not match"),
    (("--repository", REPO_ID, "--ref", "refs/tags/v9.9.9"),
     "OIDCSourceRepositoryRef does not match"),
    (("--repository", REPO_ID, "--workflow", ".github/workflows/other.yml"),
     "does not start with"),
    (("--cert-identity", SAN.replace("v1.0.0", "v1.0.1"), "--cert-oidc-issuer", GH),
     "SANs do not match"),
    (("--cert-identity", SAN, "--cert-oidc-issuer", "https://gitlab.com"),
     "OIDCIssuer does not match"),
])
def test_wrong_identity(release: Path, trust_config: Path, no_network: None,
                        identity: tuple[str, ...], reason: str) -> None:
    code, text = verify(release, trust_config, *identity)
    assert code == 1, text
    assert "Sigstore verification failed" in text and reason in text


def test_wrong_issuer(project: Path, local_sigstore: LocalSigstore, trust_config: Path,
                      tmp_path: Path) -> None:
    """A token from another issuer (same repository claims) must not pass as GitHub's."""
    out = tmp_path / "rel"
    sign(project, out, trust_config, local_sigstore.mint_token(
        repository=REPO_ID, ref=REF, issuer="https://gitlab.example.com"))
    code, text = verify(out, trust_config, *GITHUB_ID)
    assert code == 1 and "OIDCIssuerV2 does not match" in text


def test_email_identity(project: Path, local_sigstore: LocalSigstore, trust_config: Path,
                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rel"
    r = gen("release", "--project", str(project), "--sign", "keyless", "--trust-config",
            str(trust_config), "--identity-token",
            local_sigstore.mint_token(email="maintainer@example.com",
                                      issuer="https://oauth2.sigstore.dev/auth"),
            "--out", str(out))
    assert r.code == 0, r.err
    block_network(monkeypatch)
    ok = ("--cert-identity", "maintainer@example.com",
          "--cert-oidc-issuer", "https://oauth2.sigstore.dev/auth")
    assert verify(out, trust_config, *ok)[0] == 0
    assert verify(out, trust_config, *GITHUB_ID)[0] == 1


def test_foreign_trust_root(release: Path, foreign_trust_config: Path,
                            no_network: None) -> None:
    code, text = verify(release, foreign_trust_config, *GITHUB_ID)
    assert code == 1 and "Sigstore verification failed" in text


def test_public_good_root_rejects_local_release(release: Path, no_network: None) -> None:
    pg = Path(__file__).parents[1] / "data" / "sigstore" / "public-good" / "trusted_root.json"
    code, text = verify(release, pg, *GITHUB_ID)
    assert code == 1 and "Sigstore verification failed" in text


def test_trust_root_inside_release_is_refused(release: Path, trust_config: Path) -> None:
    shutil.copy(trust_config, release / "trusted_root.json")
    code, text = verify(release, release / "trusted_root.json", *GITHUB_ID)
    assert code == 2 and "must not come from inside the release" in text


def test_key_given_for_keyless_release(release: Path, tmp_path: Path) -> None:
    assert gen("keygen", "--out", str(tmp_path / "k")).code == 0
    r = gen("verify-release", str(release), "--key", str(tmp_path / "k" / "release.pub"))
    assert r.code == 1 and "signed keyless" in r.err


def _entry(b: dict) -> dict:  # type: ignore[type-arg]
    return b["verificationMaterial"]["tlogEntries"][0]  # type: ignore[no-any-return]


def _flip_checkpoint_sig(b: dict) -> None:  # type: ignore[type-arg]
    proof = _entry(b)["inclusionProof"]
    head, _, sigline = proof["checkpoint"]["envelope"].rpartition("\u2014 ")
    name, sig = sigline.strip().split(" ")
    proof["checkpoint"]["envelope"] = f"{head}\u2014 {name} {flip_b64(sig)}\n"


def _flip_checkpoint_root(b: dict) -> None:  # type: ignore[type-arg]
    proof = _entry(b)["inclusionProof"]
    lines = proof["checkpoint"]["envelope"].split("\n")
    lines[2] = flip_b64(lines[2])
    proof["checkpoint"]["envelope"] = "\n".join(lines)


ROOT_HASH = "inclusion proof contains invalid root hash"
SET = "SET: invalid inclusion promise"
TAMPER = {
    "signature": (lambda b: b["dsseEnvelope"]["signatures"][0].update(
        sig=flip_b64(b["dsseEnvelope"]["signatures"][0]["sig"], 8)), "DSSE: invalid signature"),
    "payload": (lambda b: b["dsseEnvelope"].update(
        payload=flip_b64(b["dsseEnvelope"]["payload"], 30)), "DSSE: invalid signature"),
    "set": (lambda b: _entry(b)["inclusionPromise"].update(
        signedEntryTimestamp=flip_b64(_entry(b)["inclusionPromise"]["signedEntryTimestamp"],
                                      10)), SET),
    "integrated_time": (lambda b: _entry(b).update(
        integratedTime=str(int(_entry(b)["integratedTime"]) + 1)), SET),
    "proof_hash": (lambda b: _entry(b)["inclusionProof"]["hashes"].__setitem__(
        0, flip_b64(_entry(b)["inclusionProof"]["hashes"][0])), ROOT_HASH),
    "proof_root": (lambda b: _entry(b)["inclusionProof"].update(
        rootHash=flip_b64(_entry(b)["inclusionProof"]["rootHash"])), ROOT_HASH),
    "checkpoint_sig": (_flip_checkpoint_sig, "checkpoint: invalid signature"),
    "checkpoint_root": (_flip_checkpoint_root, "checkpoint: invalid signature"),
    "log_body": (lambda b: _entry(b).update(
        canonicalizedBody=flip_b64(_entry(b)["canonicalizedBody"], 3)), ROOT_HASH),
}


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_flipped_bit(release: Path, trust_config: Path, no_network: None, what: str) -> None:
    fn, reason = TAMPER[what]
    edit_bundle(release, fn)
    code, text = verify(release, trust_config, *GITHUB_ID)
    assert code == 1, text
    assert "manifest.json.sigstore.json:" in text and reason in text


def test_swapped_manifest_keyless(release: Path, project: Path, trust_config: Path,
                                  tmp_path: Path) -> None:
    (project / "dataset" / "hello" / "task.yaml").write_text("instruction: evil\n")
    assert gen("release", "--project", str(project), "--sign", "none",
               "--out", str(tmp_path / "o")).code == 0
    shutil.copy(tmp_path / "o" / "manifest.json", release / "manifest.json")
    code, text = verify(release, trust_config, *GITHUB_ID)
    assert code == 1 and "is not the signed subject" in text
