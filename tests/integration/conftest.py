"""Fixtures for tests against the real local infrastructure (registry, Debian mirror, PyPI).

`gen infra up` starts it and `eval "$(gen infra env)"` exports
GEN_REGISTRY / DOCKER_HOST; `scripts/test.sh` does both. A missing piece FAILS the test under
CI=true and skips it elsewhere (a developer without the infrastructure still gets the unit run).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REGISTRY = os.environ.get("GEN_REGISTRY", "127.0.0.1:5000")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def need(ok: bool, reason: str) -> None:
    if ok:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing infrastructure is a failure)", pytrace=False)
    pytest.skip(reason)


def _registry_up() -> bool:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def registry() -> str:
    need(_registry_up(), f"no registry answers at http://{REGISTRY}/v2/ "
         "(start one: gen infra up)")
    return REGISTRY


@pytest.fixture(scope="session")
def tools() -> None:
    for tool in ("skopeo", "mmdebstrap", "apt-get", "git"):
        need(shutil.which(tool) is not None, f"{tool} is not installed "
             "(fix: gen infra install)")


@pytest.fixture(scope="session")
def gen_cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One CAS for the whole session (the repo's own store when present: it is a cache)."""
    old = os.environ.get("GEN_CAS")
    path = Path(old) if old else REPO / ".gen" / "cas"
    os.environ["GEN_CAS"] = str(path)
    yield path
    if old is None:
        os.environ.pop("GEN_CAS", None)
    else:
        os.environ["GEN_CAS"] = old


@pytest.fixture(scope="session")
def base_image(registry: str, tools: None, gen_cas: Path) -> str:
    """The repo's locked base (gen base build: reuses the stored rootfs when there is one)."""
    from generator.image.base import build_base

    ref = f"{registry}/gen/debian:bookworm"
    result = build_base(REPO, ref=ref)
    return result.ref


def copy_example(dst: Path) -> Path:
    """A copy of the example dataset's inputs and rendered output (this repo) at `dst`, so a
    test never touches the repo's own .gen/ state."""
    dst.mkdir(parents=True)
    for name in ("gen.yaml", "tasks", "lockfiles", "dataset"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst / name)
    return dst


def run_gen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900, env=os.environ.copy())


def closed_port() -> int:
    """A loopback port nothing listens on (a mirror or registry that does not answer)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def http_dir() -> Iterator[Callable[[Path], str]]:
    """serve(directory) -> base URL of a loopback HTTP server over it (stopped at the end):
    a stand-in Debian mirror or snapshot archive made of real files."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(directory: Path) -> str:
        directory.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_Quiet, directory=str(directory))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()
