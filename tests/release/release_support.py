"""Helpers for the `gen release` / `gen verify-release` tests (see conftest.py for fixtures).

`project` is a small synthetic dataset project (gen.yaml, dataset/, lockfiles/, two built
images in .gen/build/images.json, a validation report). `local_sigstore` is the Sigstore
double of sigstore_double.py on 127.0.0.1; `no_network` makes every socket connect fail, so
verification is shown to need no network at all.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.cli import main
from generator.image.images import BuiltImage, save_images

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "sigstore"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(ok: bool, reason: str) -> None:
    if ok:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data


def gen(*argv: str) -> Run:
    """Run the real gen CLI in-process; capture exit code, stdout and stderr.

    `gen release` gets `--allow all`: the projects here are a dataset/ without task specs,
    made to test hashing, signing and verifying; the checks `gen release` makes before
    signing (specs, images, reports) are tested in tests/unit/test_preflight.py."""
    if argv[:1] == ("release",) and "--allow" not in argv:
        argv = (*argv, "--allow", "all")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


GEN_YAML = {
    "name": "demo",
    "version": "1.0.0",
    "source_date_epoch": 1700000000,
    "platforms": ["linux/amd64"],
    "registry": "127.0.0.1:5000/demo",
    "defaults": {"base_image": "127.0.0.1:5000/gen/debian:bookworm"},
}

DATASET = {
    "hello/task.yaml": "instruction: say hello\n",
    "hello/run-tests.sh": ("#!/bin/bash\npytest -rA\n", 0o755),
    "hello/tests/test_outputs.py": "def test_ok():\n    assert True\n",
    "hello/gen/python.lock": "# empty\n",
    "swe-one/eval.sh": ("#!/bin/bash\necho '>>>>> Start Test Output'\n", 0o755),
    "swe-one/README.md": "An SWE task.\n",
}

IMAGES = {
    "hello": BuiltImage(task="hello", ref="127.0.0.1:5000/demo/hello@sha256:" + "a" * 64,
                        repository="127.0.0.1:5000/demo/hello", digest="sha256:" + "a" * 64,
                        platform="linux/amd64", key="sha256:" + "c" * 64, engine="buildah 1.28.2",
                        layout=".gen/build/oci/" + "c" * 64),
    "swe-one": BuiltImage(task="swe-one", ref="127.0.0.1:5000/demo/swe-one@sha256:" + "b" * 64,
                          repository="127.0.0.1:5000/demo/swe-one", digest="sha256:" + "b" * 64,
                          platform="linux/amd64", key="sha256:" + "d" * 64,
                          engine="buildah 1.28.2", layout=".gen/build/oci/" + "d" * 64),
}


def write_tree(root: Path, tree: dict[str, Any]) -> None:
    for rel, content in tree.items():
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
        p.chmod(mode)


def make_project(root: Path, *, images: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "gen.yaml").write_text(yaml.safe_dump(GEN_YAML))
    write_tree(root / "dataset", DATASET)
    write_tree(root / "lockfiles", {"images.lock": "# input: x\nimage a\n",
                                    "tasks/hello/apt.lock": "# apt\n"})
    if images:
        save_images(root, IMAGES)
    write_tree(root / ".gen" / "validate", {"report.json": '{"ok": true}\n'})
    return root

class _Blocked(OSError):
    pass


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on every outgoing connection (loopback included) and name lookup fails."""

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise _Blocked("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

# --- bundle surgery ---------------------------------------------------------------------

def flip_b64(value: str, byte: int = -1) -> str:
    """Flip the low bit of one byte of a base64 value (default: the last byte)."""
    raw = bytearray(base64.b64decode(value))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def edit_bundle(release: Path, fn: Any) -> None:
    path = release / "manifest.json.sigstore.json"
    bundle = json.loads(path.read_text())
    fn(bundle)
    path.write_text(json.dumps(bundle))
