"""The registry interface: tag -> digest resolution over the distribution API, and pushes.

Resolution never trusts the registry's `Docker-Content-Digest` header: it re-hashes the body it
got, and it sends all four manifest media types (distribution 2.8 answers 404 MANIFEST_UNKNOWN
instead of falling back when the stored type is not accepted). For an index it records the
index digest *and* each platform's manifest digest (re-hashed too).
Pushing goes through skopeo with `--preserve-digests`, so the digest we computed is the digest
the registry serves. Single blobs and manifests (the artifact cache, `gen cache push`) are
uploaded over the API directly: a monolithic upload (POST, then PUT ?digest=) and a manifest
PUT whose digest the registry must echo back.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import proc
from generator.core.errors import ToolError
from generator.core.fsutil import link_or_copy
from generator.image.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Layout,
    config_platform,
    platform_str,
)
from generator.lock.lockfiles import DIGEST_RE

__all__ = ["ResolvedImage", "blob_exists", "blob_url", "find_manifest", "get_manifest",
           "has_blob", "manifest_exists", "parse_ref", "pull_found", "pull_image", "push_layout",
           "put_manifest", "resolve", "upload_blob"]

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
TIMEOUT = float(os.environ.get("GEN_REGISTRY_TIMEOUT", "30"))


@dataclass(frozen=True)
class Ref:
    host: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    @property
    def insecure(self) -> bool:
        h = self.host.split(":")[0]
        return h in ("localhost", "::1") or h.startswith("127.")

    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}/v2/{self.repository}"

    def __str__(self) -> str:
        s = f"{self.host}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_ref(ref: str) -> Ref:
    """'127.0.0.1:5000/gen/debian:bookworm[@sha256:..]' -> Ref. The host part is required."""
    digest: str | None = None
    rest = ref
    if "@" in ref:
        rest, digest = ref.split("@", 1)
    first, _, path = rest.partition("/")
    if not path or not ("." in first or ":" in first or first == "localhost"):
        raise ToolError(f"image reference '{ref}' names no registry host",
                        hint="write it as host[:port]/repository:tag")
    tag = None
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    return Ref(first, path, tag, digest)


@dataclass(frozen=True)
class ResolvedImage:
    ref: str
    digest: str  # what the tag resolved to (index digest, or the manifest digest)
    media_type: str
    platforms: dict[str, str] = field(default_factory=dict)  # "linux/amd64" -> manifest digest

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


class NotFound(ToolError):
    """The registry answered 404: no such repository, tag, manifest or blob."""


def _request(url: str, *, method: str = "GET", accept: str = ACCEPT, data: Any = None,
             headers: Mapping[str, str] | None = None,
             hint: str = "check the reference, or push the image (`gen base build`)",
             ) -> tuple[bytes, Any]:
    req = urllib.request.Request(url, method=method, data=data,
                                 headers={"Accept": accept, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        error = NotFound if exc.code == 404 else ToolError
        body = exc.read()[:2000].decode("utf-8", "replace")
        try:
            errs = json.loads(body).get("errors") or []
            why = "; ".join(str(e.get("message") or e.get("code")) for e in errs) or body[:200]
        except (ValueError, AttributeError):
            why = body[:200].strip()
        raise error(f"registry answered {exc.code} ({why}) for {method} {url}",
                    hint=hint) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ToolError(f"cannot reach the registry for {url}: {exc}",
                        hint="start it with `gen infra up`") from exc


def get_manifest(ref: Ref, reference: str) -> tuple[str, str, dict[str, Any]]:
    """(digest re-hashed from the body, media type, parsed manifest)."""
    digest, media, _, data = _get_manifest(ref, reference)
    return digest, media, data


def find_manifest(ref_text: str) -> tuple[str, str, bytes, dict[str, Any]] | None:
    """(digest, media type, exact bytes, parsed) of a tag or digest; None when the registry
    has no such repository or manifest (any other failure raises)."""
    ref = parse_ref(ref_text)
    try:
        return _get_manifest(ref, ref.reference)
    except NotFound:
        return None


def _get_manifest(ref: Ref, reference: str) -> tuple[str, str, bytes, dict[str, Any]]:
    body, headers = _request(f"{ref.base_url()}/manifests/{reference}")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    claimed = headers.get("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise ToolError(f"registry claims {claimed} for {ref.repository}:{reference} but the "
                        f"body hashes to {digest}", hint="the registry is serving wrong content")
    if reference.startswith("sha256:") and reference != digest:
        raise ToolError(f"{ref.repository}@{reference}: the body hashes to {digest}",
                        hint="the registry is serving wrong content")
    data: dict[str, Any] = json.loads(body)
    media = data.get("mediaType") or headers.get("Content-Type", "")
    return digest, media, body, data


def resolve(ref_text: str) -> ResolvedImage:
    """Tag (or digest) -> digest + per-platform manifest digests, through the registry API."""
    ref = parse_ref(ref_text)
    digest, media, data = get_manifest(ref, ref.reference)
    platforms: dict[str, str] = {}
    if media in INDEX_TYPES:
        for m in data.get("manifests", []):
            plat = platform_str(m.get("platform"))
            if not plat or "unknown" in plat:  # attestation manifests
                continue
            child, _, _ = get_manifest(ref, m["digest"])
            if child != m["digest"]:  # pragma: no cover - get_manifest already checks
                raise ToolError(f"index entry {m['digest']} hashes to {child}")
            platforms[plat] = m["digest"]
    elif media in MANIFEST_TYPES:
        cfg_body, _ = _request(f"{ref.base_url()}/blobs/{data['config']['digest']}",
                               accept="*/*")
        if "sha256:" + hashlib.sha256(cfg_body).hexdigest() != data["config"]["digest"]:
            raise ToolError(f"config blob of {ref_text} does not match its digest")
        cfg = json.loads(cfg_body)
        platforms[platform_str({"os": cfg.get("os"), "architecture": cfg.get("architecture"),
                                "variant": cfg.get("variant")})] = digest
    else:
        raise ToolError(f"{ref_text} resolved to unsupported media type '{media}'")
    return ResolvedImage(ref_text, digest, media, platforms)


def blob_exists(ref_text: str, digest: str) -> bool:
    ref = parse_ref(ref_text)
    try:
        _request(f"{ref.base_url()}/blobs/{digest}", method="HEAD", accept="*/*")
    except ToolError:
        return False
    return True


def has_blob(ref_text: str, digest: str) -> bool:
    """Whether ref's repository has blob `digest` (HEAD): False on 404; a registry that does
    not answer raises ToolError (unlike `blob_exists`)."""
    ref = parse_ref(ref_text)
    try:
        _request(f"{ref.base_url()}/blobs/{digest}", method="HEAD", accept="*/*",
                 hint="start the registry with `gen infra up`")
    except NotFound:
        return False
    return True


def blob_url(ref_text: str, digest: str) -> str:
    """The URL of blob `digest` in ref's repository (GET it to download the blob)."""
    return f"{parse_ref(ref_text).base_url()}/blobs/{digest}"


_UPLOAD_HINT = "check that the registry runs and accepts pushes (`gen infra up`)"


def upload_blob(ref_text: str, digest: str, path: Path) -> None:
    """Upload the file `path` as blob `digest` of ref's repository: a monolithic upload
    (POST /blobs/uploads/, then PUT <location>?digest= with the whole body). The registry
    checks the digest against the bytes it got."""
    ref = parse_ref(ref_text)
    _, headers = _request(f"{ref.base_url()}/blobs/uploads/", method="POST", accept="*/*",
                          data=b"", headers={"Content-Length": "0"}, hint=_UPLOAD_HINT)
    location = headers.get("Location")
    if not location:
        raise ToolError(f"the registry started an upload to {ref.host}/{ref.repository} "
                        "without a Location", hint="use a registry that speaks the "
                        "distribution API")
    url = urllib.parse.urljoin(f"{ref.base_url()}/blobs/uploads/", location)
    url += ("&" if "?" in url else "?") + "digest=" + urllib.parse.quote(digest, safe="")
    size = path.stat().st_size
    with open(path, "rb") as body:
        _request(url, method="PUT", accept="*/*", data=body, hint=_UPLOAD_HINT,
                 headers={"Content-Type": "application/octet-stream",
                          "Content-Length": str(size)})
    if not has_blob(ref_text, digest):
        raise ToolError(f"the registry accepted blob {digest} for {ref.host}/{ref.repository} "
                        "but does not serve it", hint=_UPLOAD_HINT)


def put_manifest(ref_text: str, reference: str, body: bytes, media_type: str) -> str:
    """PUT manifest `body` as `reference` (a tag or its digest) of ref's repository; returns
    its digest, which the registry must report back unchanged."""
    ref = parse_ref(ref_text)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    _, headers = _request(f"{ref.base_url()}/manifests/{reference}", method="PUT",
                          accept="*/*", data=body, hint=_UPLOAD_HINT,
                          headers={"Content-Type": media_type,
                                   "Content-Length": str(len(body))})
    claimed = headers.get("Docker-Content-Digest")
    if claimed and claimed != digest:
        raise ToolError(f"registry stored {ref.repository}:{reference} as {claimed}, not "
                        f"{digest}", hint="the registry rewrote the manifest")
    return digest


def manifest_exists(ref_text: str, reference: str) -> bool:
    """Whether ref's repository has manifest `reference` (HEAD; False on 404, ToolError when
    the registry does not answer)."""
    ref = parse_ref(ref_text)
    try:
        _request(f"{ref.base_url()}/manifests/{reference}", method="HEAD")
    except NotFound:
        return False
    return True


def push_layout(layout_dir: Path, name: str, dest_ref: str, *, all_platforms: bool = True) -> None:
    """Copy image `name` of an OCI layout to `dest_ref`, keeping its digest (skopeo)."""
    ref = parse_ref(dest_ref)
    cmd = ["skopeo", "copy", "--quiet", "--preserve-digests"]
    if all_platforms:
        cmd.append("--all")
    if ref.insecure:
        cmd.append("--dest-tls-verify=false")
    cmd += [f"oci:{layout_dir}:{name}", f"docker://{dest_ref}"]
    proc.run(cmd, what=f"push {name} to {dest_ref}", timeout=900,
             fix="check that the registry runs (`gen infra up`)")


def fetch_blob(ref_text: str, digest: str, dst: Path) -> None:
    """Stream blob `digest` of ref's repository into `dst`, verifying its sha256.

    Each call writes its own temp file (concurrent fetches of one blob, by threads or by
    projects sharing a store, never write into each other's) and renames it into place."""
    ref = parse_ref(ref_text)
    url = f"{ref.base_url()}/blobs/{digest}"
    req = urllib.request.Request(url, headers={"Accept": "*/*"})
    h = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name[:16]}.partial-")
    tmp = Path(name)
    out_file = os.fdopen(fd, "wb")  # owns fd from here: closed however the download ends
    try:
        with out_file as out, urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise ToolError(f"cannot fetch blob {digest} of {ref_text}: {exc}",
                        hint="start the registry with `gen infra up`") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if "sha256:" + h.hexdigest() != digest:
        tmp.unlink(missing_ok=True)
        raise ToolError(f"blob {digest} of {ref_text} hashes to sha256:{h.hexdigest()}",
                        hint="the registry is serving wrong content")
    os.chmod(tmp, 0o644)
    os.replace(tmp, dst)


def pull_image(ref_text: str, layout_dir: Path, name: str,
               have: Mapping[str, Path] | None = None) -> Descriptor | None:
    """Copy the single-platform image `ref_text` (a tag or digest) into the OCI layout
    `layout_dir` (created if need be), tagged `name`; None when the registry has no such
    manifest. See `pull_found`."""
    found = find_manifest(ref_text)
    return None if found is None else pull_found(ref_text, found, layout_dir, name, have)


def pull_found(ref_text: str, found: tuple[str, str, bytes, dict[str, Any]], layout_dir: Path,
               name: str, have: Mapping[str, Path] | None = None) -> Descriptor:
    """`pull_image` of a manifest `find_manifest(ref_text)` already fetched: the exact bytes
    the registry holds, the manifest kept as served (its digest re-hashed), every blob
    verified by sha256. Blobs in `have` (digest -> a verified local copy, e.g. the base
    image's layers in the store) are linked from there instead of downloaded."""
    digest, media, body, manifest = found
    if media not in MANIFEST_TYPES:
        raise ToolError(f"{ref_text} is a {media or 'manifest of unknown type'}, not a "
                        "single-platform image manifest",
                        hint="the tag was written by something other than `gen build`")
    try:
        blobs = [manifest["config"], *manifest.get("layers", [])]
        bad = [b for b in blobs if not isinstance(b, dict)
               or not isinstance(b.get("digest"), str) or not DIGEST_RE.match(b["digest"])]
    except (KeyError, TypeError):
        bad, blobs = [manifest], []
    if bad:  # the digests become file names: only well-formed ones, never a path
        raise ToolError(f"{ref_text}: the manifest names a blob without a sha256 digest "
                        f"({str(bad[0])[:120]})",
                        hint="the tag was written by something other than `gen build`")
    layout = Layout.create(layout_dir)
    for blob in blobs:
        if layout.has_blob(blob["digest"]):  # the same blob twice in this manifest
            continue
        local = (have or {}).get(blob["digest"])
        if local is not None:
            link_or_copy(local, layout.blob_path(blob["digest"]))
        else:
            fetch_blob(ref_text, blob["digest"], layout.blob_path(blob["digest"]))
    config = json.loads(layout.read_bytes(manifest["config"]["digest"]))
    if layout.put_bytes(body, media).digest != digest:  # pragma: no cover - re-hashed above
        raise ToolError(f"{ref_text}: the manifest does not hash to {digest}")
    desc = Descriptor(media, digest, len(body), config_platform(config))
    layout.tag(desc, name)
    return desc
