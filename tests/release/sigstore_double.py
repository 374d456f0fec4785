"""A small Sigstore-compatible service on 127.0.0.1 for offline tests of the real client.

It is a *test double* with real keys and real proofs, so sigstore-python runs every check it
runs against the public-good instance, unpatched:

* OIDC: tokens minted in-process (ES256), GitHub-style claims; `GET /_gha_token` serves them to
  the GitHub Actions ambient-credential path (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN).
* Fulcio: `POST /api/v2/signingCert` checks the token and the CSR signature, issues a leaf under
  root -> intermediate with the Fulcio extensions and an embedded SCT signed by a CT log key
  over the precertificate TBS.
* Rekor v1: `POST /api/v1/log/entries` (dsse 0.0.1) checks the DSSE signature against the
  certificate, stores the canonical body in an RFC 6962 Merkle tree (pre-seeded, so proofs are
  not trivial), and answers with an inclusion proof, a signed checkpoint (signer name = the
  log's host:port) and a SET over the RFC 8785 {body, integratedTime, logID, logIndex}.

`trust_config()` is the ClientTrustConfig a client needs; `trusted_root()` the verifier's half.
Rekor v2 and a TSA are not implemented: gen signs with Rekor v1 like the public-good default.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
_FULCIO = "1.3.6.1.4.1.57264.1."
_SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    return b"\x0c" + _der_len(len(raw)) + raw


def _der_octets(raw: bytes) -> bytes:
    return b"\x04" + _der_len(len(raw)) + raw


def _pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


# --------------------------------------------------------------------------------------
# RFC 6962 Merkle tree
# --------------------------------------------------------------------------------------

def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return _node(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), bottom-up: what sigstore's verify_merkle_inclusion expects."""
    if len(leaves) <= 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


# --------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------

class LocalSigstore:
    """Start with `start()`; `url` is http://127.0.0.1:<port>; stop with `stop()`."""

    def __init__(self, *, seed_entries: int = 5) -> None:
        self.started = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        self.oidc_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        self.root_cert = self._ca_cert("local-sigstore-root", self.root_key, self.root_key, None)
        self.inter_cert = self._ca_cert("local-sigstore-intermediate", self.inter_key,
                                        self.root_key, self.root_cert, path_length=0)
        self.rekor_log_id = hashlib.sha256(_spki(self.rekor_key.public_key())).digest()
        self.ct_log_id = hashlib.sha256(_spki(self.ct_key.public_key())).digest()
        self.tree_id = int.from_bytes(os.urandom(7), "big")
        self.leaves: list[bytes] = [leaf_hash(os.urandom(32)) for _ in range(seed_entries)]
        self.lock = threading.Lock()
        self.gha_request_token = _b64(os.urandom(18))
        self.gha_claims: dict[str, Any] = {}
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> LocalSigstore:
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                u = urlparse(self.path)
                svc.requests.append(f"GET {u.path}")
                if u.path == "/_gha_token":
                    auth = self.headers.get("Authorization", "")
                    if auth.lower() != f"bearer {svc.gha_request_token}".lower():
                        return self._send(401, {"message": "bad request token"})
                    aud = parse_qs(u.query).get("audience", ["sigstore"])[0]
                    return self._send(200, {"value": svc.mint_token(aud=aud, **svc.gha_claims)})
                return self._send(404, {"message": "not found"})

            def do_POST(self) -> None:
                u = urlparse(self.path)
                svc.requests.append(f"POST {u.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    if u.path == "/api/v2/signingCert":
                        code, out = svc.fulcio(self.headers.get("Authorization", ""), body)
                    elif u.path == "/api/v1/log/entries":
                        code, out = svc.rekor_v1(body)
                    else:
                        code, out = 404, {"message": "not found"}
                except Exception as exc:
                    code, out = 400, {"message": f"{type(exc).__name__}: {exc}"}
                self._send(code, out)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def hostport(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.hostport}"

    # --- OIDC ----------------------------------------------------------------------------

    def mint_token(self, *, repository: str = "gen-datasets/example", ref: str = "refs/tags/v1.0.0",
                   workflow: str = ".github/workflows/release.yml", issuer: str = GITHUB_ISSUER,
                   email: str | None = None, aud: str = "sigstore", lifetime: int = 300,
                   **extra: Any) -> str:
        """A JWT signed by this instance's OIDC key. GitHub-shaped unless `email` is given."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": issuer, "aud": aud, "iat": now, "nbf": now,
                                  "exp": now + lifetime}
        if email:
            claims.update({"sub": email, "email": email, "email_verified": True})
        else:
            wf_ref = f"{repository}/{workflow}@{ref}"
            claims.update({
                "sub": f"repo:{repository}:ref:{ref}", "repository": repository, "ref": ref,
                "sha": "0" * 40, "workflow": "release", "workflow_ref": wf_ref,
                "job_workflow_ref": wf_ref, "event_name": "push",
                "repository_owner": repository.split("/")[0], "repository_id": "1",
                "repository_owner_id": "2", "repository_visibility": "public",
                "run_id": "42", "run_attempt": "1", "runner_environment": "github-hosted",
            })
        claims.update(extra)
        return jwt.encode(claims, self.oidc_key, algorithm="ES256")

    # --- Fulcio --------------------------------------------------------------------------

    def _ca_cert(self, cn: str, key: ec.EllipticCurvePrivateKey,
                 signer: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 path_length: int | None = 1) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "local-sigstore"),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder()
             .subject_name(name)
             .issuer_name(issuer.subject if issuer else name)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(self.started)
             .not_valid_after(self.started + dt.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                            critical=True)
             .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                          False, False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False))
        if issuer is not None:
            b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                signer.public_key()), critical=False)
        return b.sign(signer, hashes.SHA384())

    def _claims(self, authorization: str) -> dict[str, Any]:
        if not authorization.lower().startswith("bearer "):
            raise PermissionError("missing bearer token")
        claims: dict[str, Any] = jwt.decode(
            authorization[7:].strip(), self.oidc_key.public_key(), algorithms=["ES256"],
            audience="sigstore", options={"require": ["iss", "sub", "exp", "iat"]})
        return claims

    def _identity_extensions(self, claims: dict[str, Any]) -> tuple[x509.GeneralName,
                                                                    list[tuple[str, bytes]]]:
        issuer = claims["iss"]
        exts: list[tuple[str, bytes]] = [("1", issuer.encode()), ("8", _der_utf8(issuer))]
        if "job_workflow_ref" in claims:
            server = "https://github.com"
            san: x509.GeneralName = x509.UniformResourceIdentifier(
                f"{server}/{claims['job_workflow_ref']}")
            repo_url = f"{server}/{claims['repository']}"
            run = f"{repo_url}/actions/runs/{claims['run_id']}/attempts/{claims['run_attempt']}"
            exts += [
                ("2", claims["event_name"].encode()), ("3", claims["sha"].encode()),
                ("4", claims["workflow"].encode()), ("5", claims["repository"].encode()),
                ("6", claims["ref"].encode()),
                ("9", _der_utf8(f"{server}/{claims['job_workflow_ref']}")),
                ("10", _der_utf8(claims["sha"])),
                ("11", _der_utf8(claims["runner_environment"])),
                ("12", _der_utf8(repo_url)), ("13", _der_utf8(claims["sha"])),
                ("14", _der_utf8(claims["ref"])),
                ("15", _der_utf8(claims["repository_id"])),
                ("16", _der_utf8(f"{server}/{claims['repository_owner']}")),
                ("17", _der_utf8(claims["repository_owner_id"])),
                ("18", _der_utf8(f"{server}/{claims['workflow_ref']}")),
                ("19", _der_utf8(claims["sha"])), ("20", _der_utf8(claims["event_name"])),
                ("21", _der_utf8(run)),
                ("22", _der_utf8(claims["repository_visibility"])),
            ]
        else:
            san = x509.RFC822Name(claims.get("email") or claims["sub"])
        return san, exts

    def fulcio(self, authorization: str, body: bytes) -> tuple[int, Any]:
        try:
            claims = self._claims(authorization)
        except Exception as exc:
            return 401, {"message": f"invalid identity token: {exc}"}
        req = json.loads(body)
        csr = x509.load_pem_x509_csr(base64.b64decode(req["certificateSigningRequest"]))
        if not csr.is_signature_valid:
            return 400, {"message": "CSR signature invalid"}
        pub = csr.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        san, exts = self._identity_extensions(claims)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        serial = x509.random_serial_number()

        def builder() -> x509.CertificateBuilder:
            b = (x509.CertificateBuilder()
                 .subject_name(x509.Name([]))
                 .issuer_name(self.inter_cert.subject)
                 .public_key(pub)
                 .serial_number(serial)
                 .not_valid_before(now - dt.timedelta(seconds=30))
                 .not_valid_after(now + dt.timedelta(minutes=10))
                 .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                              False, False), critical=True)
                 .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]),
                                critical=False)
                 .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                     self.inter_key.public_key()), critical=False)
                 .add_extension(x509.SubjectAlternativeName([san]), critical=True))
            for suffix, value in exts:
                b = b.add_extension(x509.UnrecognizedExtension(
                    ObjectIdentifier(_FULCIO + suffix), value), critical=False)
            return b

        # The SCT signs the precertificate TBS: the final TBS without the SCT extension,
        # which is added last. Build that TBS first, then the final certificate.
        pre = builder().sign(self.inter_key, hashes.SHA384())
        sct_list = self._sct_list(pre.tbs_certificate_bytes, now)
        cert = builder().add_extension(
            x509.UnrecognizedExtension(_SCT_OID, _der_octets(sct_list)),
            critical=False).sign(self.inter_key, hashes.SHA384())
        assert cert.tbs_precertificate_bytes == pre.tbs_certificate_bytes
        pems = [c.public_bytes(serialization.Encoding.PEM).decode()
                for c in (cert, self.inter_cert, self.root_cert)]
        return 201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}}

    def _sct_list(self, tbs: bytes, when: dt.datetime) -> bytes:
        ts = int(when.timestamp() * 1000)
        issuer_key_hash = hashlib.sha256(_spki(self.inter_key.public_key())).digest()
        signed = (struct.pack("!BBQH", 0, 0, ts, 1) + issuer_key_hash
                  + len(tbs).to_bytes(3, "big") + tbs + struct.pack("!H", 0))
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (struct.pack("!B", 0) + self.ct_log_id + struct.pack("!QH", ts, 0)
               + struct.pack("!BBH", 4, 3, len(sig)) + sig)
        one = struct.pack("!H", len(sct)) + sct
        return struct.pack("!H", len(one)) + one

    # --- Rekor v1 ------------------------------------------------------------------------

    def rekor_v1(self, body: bytes) -> tuple[int, Any]:
        proposed = json.loads(body)
        if proposed.get("kind") != "dsse" or proposed.get("apiVersion") != "0.0.1":
            return 400, {"message": f"unsupported entry {proposed.get('kind')}"}
        content = proposed["spec"]["proposedContent"]
        envelope = json.loads(content["envelope"])
        pem = base64.b64decode(content["verifiers"][0])
        cert = x509.load_pem_x509_certificate(pem)
        payload = base64.b64decode(envelope["payload"])
        pub = cert.public_key()
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        for s in envelope["signatures"]:
            pub.verify(base64.b64decode(s["sig"]), _pae(envelope["payloadType"], payload),
                       ec.ECDSA(hashes.SHA256()))
        stored = {
            "apiVersion": "0.0.1", "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256",
                                 "value": hashlib.sha256(rfc8785.dumps(envelope)).hexdigest()},
                "payloadHash": {"algorithm": "sha256",
                                "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": s["sig"], "verifier": content["verifiers"][0]}
                               for s in envelope["signatures"]],
            },
        }
        canonical = rfc8785.dumps(stored)  # type: ignore[arg-type]
        with self.lock:
            index = len(self.leaves)
            self.leaves.append(leaf_hash(canonical))
            leaves = list(self.leaves)
        size = len(leaves)
        root = _mth(leaves)
        proof = _path(index, leaves)
        integrated = int(time.time())
        body_b64 = _b64(canonical)
        set_payload = rfc8785.dumps({"body": body_b64, "integratedTime": integrated,
                                     "logID": self.rekor_log_id.hex(), "logIndex": index})
        set_sig = self.rekor_key.sign(set_payload, ec.ECDSA(hashes.SHA256()))
        uuid = leaf_hash(canonical).hex()
        return 201, {uuid: {
            "body": body_b64, "integratedTime": integrated, "logID": self.rekor_log_id.hex(),
            "logIndex": index,
            "verification": {
                "signedEntryTimestamp": _b64(set_sig),
                "inclusionProof": {"logIndex": index, "rootHash": root.hex(), "treeSize": size,
                                   "hashes": [h.hex() for h in proof],
                                   "checkpoint": self.checkpoint(size, root)},
            },
        }}

    def checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self.hostport} - {self.tree_id}\n{size}\n{_b64(root)}\n"
        sig = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        return f"{note}\n\u2014 {self.hostport} {_b64(self.rekor_log_id[:4] + sig)}\n"

    # --- trust material ------------------------------------------------------------------

    def _validity(self) -> dict[str, str]:
        return {"start": self.started.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _log(self, key: ec.EllipticCurvePrivateKey, log_id: bytes, url: str) -> dict[str, Any]:
        return {"baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": _b64(_spki(key.public_key())),
                              "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                              "validFor": self._validity()},
                "logId": {"keyId": _b64(log_id)}}

    def trusted_root(self) -> dict[str, Any]:
        der = serialization.Encoding.DER
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [self._log(self.rekor_key, self.rekor_log_id, self.url)],
            "certificateAuthorities": [{
                "subject": {"organization": "local-sigstore", "commonName": "local-sigstore"},
                "uri": self.url,
                "certChain": {"certificates": [
                    {"rawBytes": _b64(self.inter_cert.public_bytes(der))},
                    {"rawBytes": _b64(self.root_cert.public_bytes(der))}]},
                "validFor": self._validity()}],
            "ctlogs": [self._log(self.ct_key, self.ct_log_id, f"{self.url}/ct")],
            "timestampAuthorities": [],
        }

    def trust_config(self) -> dict[str, Any]:
        def service(url: str) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": 1, "validFor": self._validity(),
                    "operator": "local-sigstore"}

        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": self.trusted_root(),
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [service(self.url)],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }
