"""Format-drift guard: a real public-good bundle verifies offline through gen's own path."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from generator.core.errors import CheckFailed
from generator.release.manifest import PREDICATE_TYPE, STATEMENT_TYPE
from generator.release.sign import PAYLOAD_TYPE, github_policy, load_trusted_root, verify_bundle
from tests.release.release_support import DATA

PG = DATA / "public-good"
BUNDLE = PG / "foundry-stable.sigstore.json"
SAN = "https://github.com/foundry-rs/foundry/.github/workflows/release.yml@refs/tags/stable"


def _verify(policy: object) -> tuple[str, bytes, object]:
    root = load_trusted_root(PG / "trusted_root.json")
    return verify_bundle(BUNDLE.read_bytes(), where=BUNDLE.name, trusted_root=root,
                         policy=policy)


def test_fixture_is_pinned() -> None:
    assert hashlib.sha256(BUNDLE.read_bytes()).hexdigest() == (
        "377e5c9aae348be8e9bfedac90eee045d923fb015375fabcc0cd3167d7f32f55")
    b = json.loads(BUNDLE.read_text())
    assert b["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert b["verificationMaterial"]["tlogEntries"][0]["kindVersion"] == {
        "kind": "dsse", "version": "0.0.1"}


def test_public_good_bundle_verifies_offline(no_network: None) -> None:
    ptype, payload, signer = _verify(github_policy(
        "foundry-rs/foundry", "refs/tags/stable", ".github/workflows/release.yml"))
    assert ptype == PAYLOAD_TYPE
    st = json.loads(payload)
    assert st["_type"] == STATEMENT_TYPE and st["predicateType"] == PREDICATE_TYPE
    assert [s["name"] for s in st["subject"]] == ["anvil", "cast", "chisel", "forge"]
    assert signer.identity == SAN  # type: ignore[attr-defined]
    assert signer.log_index == 726844033  # type: ignore[attr-defined]


@pytest.mark.parametrize(("repo", "ref", "why"), [
    ("foundry-rs/other", "refs/tags/stable", "OIDCSourceRepositoryURI does not match"),
    ("foundry-rs/foundry", "refs/heads/main", "OIDCSourceRepositoryRef does not match"),
])
def test_public_good_wrong_identity(no_network: None, repo: str, ref: str, why: str) -> None:
    with pytest.raises(CheckFailed, match=why):
        _verify(github_policy(repo, ref))


def test_public_good_tampered_payload(no_network: None) -> None:
    b = json.loads(BUNDLE.read_text())
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    st["subject"][0]["digest"]["sha256"] = "0" * 64
    b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
    root = load_trusted_root(PG / "trusted_root.json")
    with pytest.raises(CheckFailed, match="Sigstore verification failed"):
        verify_bundle(json.dumps(b).encode(), where="x", trusted_root=root,
                      policy=github_policy("foundry-rs/foundry"))
