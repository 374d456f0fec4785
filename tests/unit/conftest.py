"""Unit tests are fast and offline: an autouse guard makes any attempt to start a container
engine, registry or image tool from a unit test fail at once, naming the program. Everything gen
runs goes through generator.core.proc (the one door; tests/unit/test_one_door.py), so guarding
proc.run and proc.spawn guards everything. A test's own fake engine (a script in its tmp_path)
is allowed."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from generator.core import proc

ENGINE_PROGRAMS = frozenset({
    "docker", "dockerd", "containerd", "buildah", "podman", "skopeo", "umoci", "mmdebstrap",
    "docker-registry", "registry", "buildkitd", "runc", "crun",
})


class EngineInUnitTest(AssertionError):
    pass


def _guarded(real: Any) -> Any:
    def call(cmd: Any, *args: Any, **kwargs: Any) -> Any:
        first = os.fspath(cmd[0]) if cmd else ""
        program = os.path.basename(first)
        where = first if os.path.isabs(first) else (shutil.which(first) or "")
        fake = where.startswith(tempfile.gettempdir() + os.sep)  # a test's own fake program
        if program in ENGINE_PROGRAMS and not fake:
            raise EngineInUnitTest(f"a unit test tried to run {program} ({' '.join(map(str, cmd))})"
                                   ": engine tests belong in tests/integration, marked")
        return real(cmd, *args, **kwargs)
    return call


@pytest.fixture(autouse=True)
def no_real_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(proc, "run", _guarded(proc.run))
    monkeypatch.setattr(proc, "spawn", _guarded(proc.spawn))
    yield
