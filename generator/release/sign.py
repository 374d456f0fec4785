"""Signing and verifying the release Statement: Sigstore keyless, or an Ed25519/P-256 key.

Both modes produce the same thing: a Sigstore bundle v0.3 holding a DSSE envelope around the
canonical in-toto Statement bytes (payloadType application/vnd.in-toto+json).

* keyless: the real `sigstore` client. `SigningContext.from_trust_config(tc)` with the public-good
  instance by default (TUF refresh) or a ClientTrustConfig file (a private instance, the test
  service), an OIDC token from `--identity-token`, the environment, or the CI's ambient
  credentials. Verified by `sigstore.verify.Verifier.verify_dsse` against a trusted root the
  *verifier* supplies, then an identity policy.
* key: the bundle carries `verificationMaterial.publicKey.hint` (base64 of the sha256 of the
  SPKI DER, as cosign) and no log entry. sigstore-python cannot read such bundles
  (sigstore-python#1244), so gen verifies them itself: exactly one signature over the DSSE PAE
  by one of the configured public keys. The hint is never trusted to select anything.

`verify_dsse` checks only signatures; callers must check the payload type and the Statement
(see generator/release/release.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from generator.core.errors import CheckFailed, InputError, ToolError, UsageError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "GITHUB_ISSUER",
    "PAYLOAD_TYPE",
    "PrivateKey",
    "PublicKey",
    "SignerInfo",
    "generate_key",
    "github_policy",
    "identity_policy",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "load_signing_config",
    "load_trusted_root",
    "pae",
    "resolve_identity_token",
    "sign_keyless",
    "sign_with_key",
    "verify_bundle",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
_BUNDLE_V03_TYPES = (BUNDLE_MEDIA_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3")
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
KEY_PASSWORD_ENV = "GEN_KEY_PASSWORD"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
KeyKind = Literal["ed25519", "p256"]


@dataclass(frozen=True)
class SignerInfo:
    """Who signed, as established by verification (or by signing)."""

    mode: str  # "keyless" | "key"
    identity: str | None = None  # certificate SAN (keyless)
    issuer: str | None = None  # OIDC issuer (keyless)
    key_hint: str | None = None  # base64 sha256 of the SPKI DER (key)
    log_index: int | None = None
    integrated_time: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------

def _password() -> bytes | None:
    pw = os.environ.get(KEY_PASSWORD_ENV)
    return pw.encode() if pw else None


def generate_key(kind: KeyKind = "ed25519") -> tuple[bytes, bytes]:
    """(private PKCS#8 PEM, public SPKI PEM). Encrypted with $GEN_KEY_PASSWORD when set."""
    key: PrivateKey = (ed25519.Ed25519PrivateKey.generate() if kind == "ed25519"
                       else ec.generate_private_key(ec.SECP256R1()))
    pw = _password()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption())
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub


def load_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the signing key {path}: {exc.strerror}",
                         hint="create one with `gen keygen`") from exc
    try:
        key = serialization.load_pem_private_key(data, password=_password())
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a usable PEM private key: {exc}", file=str(path),
                         hint=f"set {KEY_PASSWORD_ENV} if the key is encrypted") from exc
    if isinstance(key, ed25519.Ed25519PrivateKey) or (
            isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"):
        return key
    raise InputError("only Ed25519 and P-256 keys can sign releases", file=str(path),
                     hint="create one with `gen keygen`")


def load_public_key(path: Path) -> PublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the public key {path}: {exc.strerror}",
                         hint="pass the .pub file `gen keygen` wrote") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise InputError(f"not a PEM public key: {exc}", file=str(path),
                         hint="pass the .pub file `gen keygen` wrote") from exc
    if isinstance(key, ed25519.Ed25519PublicKey) or (
            isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"):
        return key
    raise InputError("only Ed25519 and P-256 public keys are supported", file=str(path))


def key_hint(key: PublicKey) -> str:
    """base64(sha256(SPKI DER)), the hint cosign writes. Opaque: never used to pick a key."""
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign_with_key(statement: bytes, key: PrivateKey) -> tuple[bytes, SignerInfo]:
    """A bundle v0.3: DSSE envelope signed by `key`, public-key hint, no log entry."""
    msg = pae(PAYLOAD_TYPE, statement)
    sig = key.sign(msg) if isinstance(key, ed25519.Ed25519PrivateKey) else key.sign(
        msg, ec.ECDSA(hashes.SHA256()))
    hint = key_hint(key.public_key())
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}, "tlogEntries": []},
        "dsseEnvelope": {"payload": _b64(statement), "payloadType": PAYLOAD_TYPE,
                         "signatures": [{"sig": _b64(sig)}]},
    }
    return (json.dumps(bundle, indent=2, sort_keys=True) + "\n").encode(), SignerInfo(
        mode="key", key_hint=hint)


def _verify_with_key(key: PublicKey, sig: bytes, msg: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, msg)
        else:
            key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _verify_key_bundle(bundle: dict[str, Any], keys: Sequence[PublicKey],
                       where: str) -> tuple[str, bytes, SignerInfo]:
    vm = bundle.get("verificationMaterial") or {}
    if vm.get("tlogEntries"):
        raise CheckFailed(f"{where}: a key-signed bundle must not carry log entries "
                          "(gen cannot verify them against a key)")
    env = bundle.get("dsseEnvelope")
    if not isinstance(env, dict):
        raise CheckFailed(f"{where}: no DSSE envelope in the bundle")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != 1 or not isinstance(sigs[0], dict):
        raise CheckFailed(f"{where}: the DSSE envelope must carry exactly one signature")
    try:
        payload = base64.b64decode(env.get("payload", ""), validate=True)
        sig = base64.b64decode(sigs[0].get("sig", ""), validate=True)
    except (binascii.Error, TypeError) as exc:
        raise CheckFailed(f"{where}: DSSE payload or signature is not base64 ({exc})") from exc
    ptype = env.get("payloadType")
    if not isinstance(ptype, str):
        raise CheckFailed(f"{where}: the DSSE envelope has no payloadType")
    msg = pae(ptype, payload)
    for key in keys:
        if _verify_with_key(key, sig, msg):
            return ptype, payload, SignerInfo(mode="key", key_hint=key_hint(key))
    raise CheckFailed(f"{where}: DSSE signature does not verify with "
                      f"{'the given key' if len(keys) == 1 else 'any of the given keys'} "
                      "(wrong key, or the signature or payload was altered)")


# --------------------------------------------------------------------------------------
# Sigstore (keyless)
# --------------------------------------------------------------------------------------

def load_signing_config(path: Path | None) -> Any:
    """A sigstore ClientTrustConfig: the file given, else public-good (TUF refresh)."""
    from sigstore.models import ClientTrustConfig

    if path is None:
        try:
            return ClientTrustConfig.production()
        except Exception as exc:
            raise ToolError(f"cannot load the Sigstore public-good trust config (TUF): {exc}",
                            hint="check the network, or pass --trust-config FILE") from exc
    try:
        return ClientTrustConfig.from_json(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read --trust-config {path}: {exc.strerror}") from exc
    except Exception as exc:
        raise InputError(f"not a Sigstore ClientTrustConfig: {exc}", file=str(path),
                         hint="pass an application/vnd.dev.sigstore.clienttrustconfig JSON") \
            from exc


def load_trusted_root(path: Path | None, *, offline: bool = False) -> Any:
    """The verifier's trusted root: a ClientTrustConfig or trusted_root.json file, or the
    public-good root (TUF refresh, or the cached/embedded copy with `offline`)."""
    from sigstore.models import ClientTrustConfig, TrustedRoot

    if path is None:
        try:
            return ClientTrustConfig.production(offline=offline).trusted_root
        except Exception as exc:
            raise ToolError(f"cannot load the Sigstore public-good trusted root: {exc}",
                            hint="check the network, or pass --offline or --trust-config FILE")\
                from exc
    try:
        text = path.read_text()
        media = str(json.loads(text).get("mediaType", ""))
    except OSError as exc:
        raise UsageError(f"cannot read --trust-config {path}: {exc.strerror}") from exc
    except (ValueError, AttributeError) as exc:
        raise InputError(f"not JSON: {exc}", file=str(path)) from exc
    try:
        if "clienttrustconfig" in media:
            return ClientTrustConfig.from_json(text).trusted_root
        return TrustedRoot.from_file(str(path))
    except Exception as exc:
        raise InputError(f"not a Sigstore trusted root or trust config: {exc}", file=str(path))\
            from exc


def resolve_identity_token(arg: str | None, env: dict[str, str] | None = None) -> str:
    """--identity-token TOKEN or @FILE, else $GEN_IDENTITY_TOKEN / $SIGSTORE_IDENTITY_TOKEN,
    else the CI's ambient credential (GitHub Actions needs `permissions: id-token: write`)."""
    env = dict(os.environ if env is None else env)
    if arg:
        if arg.startswith("@"):
            try:
                return Path(arg[1:]).read_text().strip()
            except OSError as exc:
                raise UsageError(f"cannot read the identity token file {arg[1:]}: "
                                 f"{exc.strerror}") from exc
        return arg.strip()
    for var in ("GEN_IDENTITY_TOKEN", "SIGSTORE_IDENTITY_TOKEN"):
        if env.get(var):
            return env[var].strip()
    from sigstore.oidc import detect_credential

    try:
        token = detect_credential()
    except Exception as exc:
        raise ToolError(f"ambient OIDC credential detection failed: {exc}",
                        hint="in GitHub Actions grant `permissions: id-token: write`") from exc
    if not token:
        raise UsageError("keyless signing needs an OIDC identity token and none was found",
                         hint="run in CI with `permissions: id-token: write`, pass "
                              "--identity-token, or use --sign key")
    return str(token)


def sign_keyless(statement: bytes, trust_config: Any, token: str) -> tuple[bytes, SignerInfo]:
    """Sign `statement` as DSSE with an ephemeral key + Fulcio certificate + Rekor entry."""
    from sigstore.dsse import Statement
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext

    try:
        tok = IdentityToken(token)
    except Exception as exc:
        raise UsageError(f"the identity token is not usable: {exc}",
                         hint="tokens need aud 'sigstore' and must not be expired") from exc
    try:
        ctx = SigningContext.from_trust_config(trust_config)
        with ctx.signer(tok, cache=True) as signer:
            bundle = signer.sign_dsse(Statement(statement))
    except Exception as exc:
        raise ToolError(f"Sigstore signing failed: {type(exc).__name__}: {exc}",
                        hint="check that Fulcio/Rekor in the trust config are reachable") \
            from exc
    entry = bundle.log_entry._inner
    san, cert_issuer = _cert_identity(bundle.signing_certificate)
    info = SignerInfo(mode="keyless", identity=san or str(tok.identity),
                      issuer=cert_issuer or str(tok.federated_issuer or tok.issuer),
                      log_index=int(entry.log_index),
                      integrated_time=int(entry.integrated_time) if entry.integrated_time
                      else None)
    return bundle.to_json().encode(), info


class _SANPrefix:
    """Policy: the certificate's SAN URI starts with `prefix` (e.g. a workflow path + '@')."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix

    def verify(self, cert: Any) -> None:
        from cryptography.x509 import SubjectAlternativeName, UniformResourceIdentifier
        from sigstore.errors import VerificationError

        sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        uris = sans.get_values_for_type(UniformResourceIdentifier)
        if not any(u.startswith(self._prefix) for u in uris):
            raise VerificationError(f"certificate SAN {uris} does not start with {self._prefix}")


def github_policy(repository: str, ref: str | None = None, workflow: str | None = None,
                  issuer: str = GITHUB_ISSUER) -> Any:
    """A GitHub Actions identity: issuer, source repository, optionally ref and workflow path."""
    from sigstore.verify import policy

    if repository.count("/") != 1 or not all(repository.split("/")):
        raise UsageError(f"--repository '{repository}' is not ORG/REPO")
    checks: list[Any] = [
        policy.OIDCIssuerV2(issuer),
        policy.OIDCSourceRepositoryURI(f"https://github.com/{repository}"),
    ]
    if ref:
        checks.append(policy.OIDCSourceRepositoryRef(ref))
    if workflow:
        checks.append(_SANPrefix(f"https://github.com/{repository}/{workflow.lstrip('/')}@"))
    return policy.AllOf(checks)


def identity_policy(identity: str, issuer: str) -> Any:
    from sigstore.verify import policy

    return policy.Identity(identity=identity, issuer=issuer)


def _cert_identity(cert: Any) -> tuple[str | None, str | None]:
    from cryptography.x509 import (
        ObjectIdentifier,
        RFC822Name,
        SubjectAlternativeName,
        UniformResourceIdentifier,
    )

    ident = None
    try:
        sans = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        vals = (sans.get_values_for_type(UniformResourceIdentifier)
                + sans.get_values_for_type(RFC822Name))
        ident = vals[0] if vals else None
    except Exception:
        pass
    issuer = None
    try:
        raw = cert.extensions.get_extension_for_oid(
            ObjectIdentifier("1.3.6.1.4.1.57264.1.1")).value.value
        issuer = raw.decode()
    except Exception:
        pass
    return ident, issuer


def verify_bundle(bundle_bytes: bytes, *, where: str, keys: Sequence[PublicKey] = (),
                  trusted_root: Any = None, policy: Any = None) -> tuple[str, bytes, SignerInfo]:
    """Verify a bundle's DSSE envelope: (payloadType, payload, who signed).

    A bundle with `publicKey` is checked against `keys`; any other goes through sigstore's
    Verifier with `trusted_root` and `policy`. A mismatch between the bundle's kind and what
    the caller configured is a verification failure, never a fallback.
    """
    try:
        raw = json.loads(bundle_bytes)
    except ValueError as exc:
        raise CheckFailed(f"{where}: not JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise CheckFailed(f"{where}: not a Sigstore bundle")
    is_key_bundle = "publicKey" in (raw.get("verificationMaterial") or {})
    if is_key_bundle:
        if raw.get("mediaType") not in _BUNDLE_V03_TYPES:
            raise CheckFailed(f"{where}: unsupported bundle media type {raw.get('mediaType')!r}")
        if not keys:
            raise CheckFailed(f"{where}: the release is signed with a key, not keyless; "
                              "verify it with --key PUB.pem")
        return _verify_key_bundle(raw, keys, where)
    if keys:
        raise CheckFailed(f"{where}: the release is signed keyless (Sigstore), not with a key; "
                          "verify it with --repository/--ref or --cert-identity/--cert-oidc-issuer")
    if trusted_root is None or policy is None:
        raise UsageError("a keyless release needs an identity to check",
                         hint="pass --repository ORG/REPO [--ref REF], or --cert-identity and "
                              "--cert-oidc-issuer")
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    try:
        bundle = Bundle.from_json(bundle_bytes)
    except Exception as exc:
        raise CheckFailed(f"{where}: malformed Sigstore bundle: {exc}") from exc
    try:
        ptype, payload = Verifier(trusted_root=trusted_root).verify_dsse(bundle, policy)
    except Exception as exc:
        msg = " ".join(str(exc).split())
        if len(msg) > 160:  # some messages embed whole proofs as Python reprs
            msg = msg[:160] + "…"
        raise CheckFailed(f"{where}: Sigstore verification failed: {msg}") from exc
    entry = bundle.log_entry._inner
    ident, issuer = _cert_identity(bundle.signing_certificate)
    return ptype, payload, SignerInfo(
        mode="keyless", identity=ident, issuer=issuer, log_index=int(entry.log_index),
        integrated_time=int(entry.integrated_time) if entry.integrated_time else None)
