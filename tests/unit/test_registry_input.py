"""What gen takes from a registry is checked before it touches the disk. A real registry
(distribution) refuses to store such manifests, so a small HTTP server plays a hostile one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from generator.core.errors import ToolError
from generator.image import registry as reg

MANIFESTS: dict[str, dict[str, Any]] = {
    "traversal": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2,
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": "sha256:" + "a" * 64, "size": 2},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                              "digest": "sha256:../../../escape", "size": 1}]},
    "no-config": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2,
                  "layers": []},
    "odd-algo": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "schemaVersion": 2,
                 "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                            "digest": "md5:" + "a" * 32, "size": 2}, "layers": []},
}


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        name = self.path.rsplit("/", 1)[-1]
        body = json.dumps(MANIFESTS.get(name, {})).encode()
        self.send_response(200 if name in MANIFESTS else 404)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def hostile() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hostile)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}/evil/img"
    finally:
        server.shutdown()


@pytest.mark.parametrize("tag", sorted(MANIFESTS))
def test_a_manifest_naming_no_sha256_blob_is_refused(hostile: str, tmp_path: Path,
                                                     tag: str) -> None:
    dest = tmp_path / "pull" / "oci"
    with pytest.raises(ToolError, match="names a blob without a sha256 digest"):
        reg.pull_image(f"{hostile}:{tag}", dest, "t")
    assert not (tmp_path / "pull").exists() and not (tmp_path / "escape").exists()


def test_a_missing_tag_is_none(hostile: str, tmp_path: Path) -> None:
    assert reg.pull_image(f"{hostile}:nope", tmp_path / "oci", "t") is None
