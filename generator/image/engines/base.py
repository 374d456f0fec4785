"""What every engine shares: the Engine protocol, a build request, the images an engine stores,
and `run_engine`, the one way an engine runs its program (through core/proc)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from generator.core import proc
from generator.core.errors import ToolError

__all__ = ["DOCKER_CLI", "BuildRequest", "Engine", "StoredImage", "parse_size", "run_engine"]

# read at call time as `base.DOCKER_CLI` (docker, buildx): a test points it elsewhere
DOCKER_CLI = os.environ.get("GEN_DOCKER_CLI", "/usr/bin/docker")


@dataclass(frozen=True)
class BuildRequest:
    context: Path  # the staged build context (Dockerfile at its root)
    out_layout: Path  # OCI layout directory to create
    ref_name: str  # the ref name inside the layout's index.json
    epoch: int  # SOURCE_DATE_EPOCH
    platform: str = "linux/amd64"
    network: bool = False
    isolated: bool = False  # fresh storage / builder state: nothing shared with other builds
    env: dict[str, str] = field(default_factory=dict)  # extra env of the engine process
    umask: int | None = None
    timeout: float = 3600


@dataclass(frozen=True)
class StoredImage:
    """An image in an engine's storage that gen owns (buildah's shared storage root)."""

    id: str
    names: tuple[str, ...]
    digest: str
    size: int  # bytes, as the engine estimates them


_SIZE_RE = re.compile(r"([0-9.]+(?:e[+-]?[0-9]+)?)\s*([kKMGT]?B)\Z")
_SIZE_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def parse_size(text: str) -> int:
    """Bytes of a size as the containers tools print it ("127 MB", "5.12 kB", "1e+03 KB":
    decimal units); 0 when it cannot be read."""
    m = _SIZE_RE.match(text.strip())
    if m is None:
        return 0
    try:  # the pattern admits only the units the table has; "1.2.3" is no float
        return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])
    except ValueError:
        return 0


class Engine(Protocol):
    name: str

    def available(self) -> str | None:
        """None when usable, else why not (one line)."""

    def version(self) -> str: ...

    def build(self, req: BuildRequest) -> None:
        """Build req.context into an OCI layout at req.out_layout (one image, ref_name)."""


def run_engine(cmd: list[str], *, what: str, req: BuildRequest,
               extra: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    """Run an engine step of `req` (its env, umask and timeout) and return its stdout; a
    failure is a ToolError carrying the engine's own error lines, never its warnings."""
    result = proc.run(cmd, what=what, cwd=cwd, extra_env={**req.env, **(extra or {})},
                      timeout=req.timeout, umask=req.umask, check=False,
                      timeout_fix="raise the build timeout or look for a hanging RUN step")
    name = Path(cmd[0]).name
    if result.returncode != 0:
        # the engine's own error lines, never its warnings (CNI config ...: `-v` logs them)
        detail = proc.failure_detail(name, result.stderr, result.stdout)
        raise ToolError(f"cannot {what}: {name} exited {result.returncode}: {detail}",
                        hint="read the build log above; fix the task's Dockerfile or locks")
    return str(result.stdout)
