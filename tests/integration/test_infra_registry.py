"""`gen infra` against the real CNCF distribution registry (Debian's docker-registry).

A second registry on a free loopback port, in its own state dir: started, found running,
reused (not owned) by another state dir, stopped by PID. The Docker engine side runs for real
in every CI run: scripts/test.sh brings the infrastructure up with `gen infra up` and takes it
down with `gen infra down`.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from generator.core.errors import ToolError
from generator.image.infra import Infra, alive
from tests.integration.conftest import need

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_registry_up_reuse_and_down_by_pid(tmp_path: Path) -> None:
    need(shutil.which("docker-registry") is not None,
         "docker-registry is not installed (fix: gen infra install)")
    addr = f"127.0.0.1:{_free_port()}"
    ours = Infra(tmp_path, state=tmp_path / "a", registry=addr)
    other = Infra(tmp_path, state=tmp_path / "b", registry=addr)
    said: list[str] = []
    try:
        assert not ours.registry_ok()
        ours.registry_up(said.append)
        assert ours.registry_ok()
        pid = int((tmp_path / "a" / "registry" / "registry.pid").read_text())
        assert alive(pid)
        assert said[-1].startswith(f"registry: started at http://{addr} (pid {pid}")
        config = (tmp_path / "a" / "registry" / "config.yml").read_text()
        assert f"addr: {addr}" in config and "htpasswd" not in config

        ours.registry_up(said.append)  # idempotent
        assert said[-1] == f"registry: running at http://{addr} (pid {pid})"
        status = ours.status()
        assert status.registry_up and status.registry_pid == pid

        other.registry_up(said.append)  # someone else's: reused, never stopped
        assert "not ours" in said[-1]
        other.down(said.append)
        assert alive(pid) and ours.registry_ok()
        assert other.status().registry_pid is None
    finally:
        ours.down(said.append)
    assert said[-1] == f"registry: stopped (pid {pid})"
    assert not alive(pid)
    assert not ours.registry_ok()
    assert not (tmp_path / "a" / "registry" / "registry.pid").exists()


def test_registry_that_cannot_start_is_reported_and_not_left_running(tmp_path: Path) -> None:
    need(shutil.which("docker-registry") is not None,
         "docker-registry is not installed (fix: gen infra install)")
    with socket.socket() as taken:  # the port is bound (not listening): the registry fails
        taken.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        infra = Infra(tmp_path, state=tmp_path / "s", registry=addr)
        with pytest.raises(ToolError, match="did not come up") as err:
            infra.registry_up(lambda _line: None)
        assert "GEN_REGISTRY" in err.value.one_line()
    assert not (tmp_path / "s" / "registry" / "registry.pid").exists()
