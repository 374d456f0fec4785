"""Container engines behind one interface: build a context into an OCI image layout.

- `buildah`: daemonless, `bud --timestamp <epoch>` (natively reproducible), its own storage
  root per build when asked (no shared cache), RUN steps with `--network none`.
- `docker`: the Docker Engine through the CLI (`/usr/bin/docker`; the docker SDK cannot drive
  BuildKit), `DOCKER_BUILDKIT=1`, `--network none`, `--no-cache`; the image is exported with
  `docker save` and converted to an OCI layout by skopeo. Its raw output is not reproducible
  (timestamps, whiteouts); gen's normalizer makes it so.
- `buildx`: `docker buildx build --output type=oci,rewrite-timestamp=true` with BuildKit
  >= 0.13, used when the buildx plugin is present.

Nothing else in gen runs an engine: build/verify/validate go through `get_engine()`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from generator.core import proc
from generator.core.errors import ToolError, UsageError
from generator.image.oci import layout_from_dir

__all__ = ["ENGINES", "BuildRequest", "Buildah", "Engine", "StoredImage", "available_engines",
           "get_engine", "parse_size"]

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


def _umask_preexec(umask: int | None):  # type: ignore[no-untyped-def]
    if umask is None:
        return None

    def set_umask() -> None:
        os.umask(umask)

    return set_umask


def _run(cmd: list[str], *, what: str, req: BuildRequest, extra: dict[str, str] | None = None,
         cwd: Path | None = None) -> str:
    env = dict(os.environ)
    env.update(req.env)
    env.update(extra or {})
    import subprocess

    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=req.timeout, preexec_fn=_umask_preexec(req.umask),
                                check=False)
    except FileNotFoundError as exc:
        raise ToolError(f"cannot {what}: '{cmd[0]}' not found",
                        hint="run `gen infra install`") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"cannot {what}: timed out after {req.timeout:.0f}s",
                        hint="raise the build timeout or look for a hanging RUN step") from exc
    name = Path(cmd[0]).name
    if result.returncode != 0:
        # the engine's own error lines, never its warnings (CNI config ...: `-v` logs them)
        detail = proc.failure_detail(name, result.stderr, result.stdout)
        raise ToolError(f"cannot {what}: {name} exited {result.returncode}: {detail}",
                        hint="read the build log above; fix the task's Dockerfile or locks")
    proc.log_warnings(name, result.stderr)
    return result.stdout


# --------------------------------------------------------------------------------------
# buildah
# --------------------------------------------------------------------------------------


class Buildah:
    name = "buildah"
    STORAGE_DIR = "buildah"  # the shared storage root's name in gen's build state dir

    def __init__(self, state: Path) -> None:
        self.state = state  # shared storage root for non-isolated builds

    @classmethod
    def in_state(cls, state: Path) -> Buildah:
        """The engine whose shared storage lives in gen's build state dir `state`."""
        return cls(state / cls.STORAGE_DIR)

    def available(self) -> str | None:
        if shutil.which("buildah") is None:
            return "buildah is not installed (fix: gen infra install)"
        return None

    def version(self) -> str:
        out = proc.run(["buildah", "--version"], what="ask buildah its version").stdout
        m = re.search(r"version (\S+)", str(out))
        return f"buildah {m.group(1) if m else '?'}"

    def _storage(self, root: Path) -> list[str]:
        return ["--root", str(root / "root"), "--runroot", str(root / "run"),
                "--storage-driver", os.environ.get("GEN_BUILDAH_DRIVER", "overlay")]

    def has_storage(self) -> bool:
        """Has a non-isolated build made the shared storage root?"""
        return (self.state / "root").is_dir()

    def stored_images(self) -> list[StoredImage]:
        """The images in the shared storage: what non-isolated builds pulled (their base
        images; each build removes the image it made)."""
        if not self.has_storage():
            return []
        found = []
        for item in self._list("images"):
            found.append(StoredImage(id=str(item.get("id", "")),
                                     names=tuple(str(n) for n in item.get("names") or []),
                                     digest=str(item.get("digest", "")),
                                     size=parse_size(str(item.get("size", "")))))
        return sorted(found, key=lambda i: (i.names, i.id))

    def stored_containers(self) -> list[str]:
        """Working containers left in the shared storage (a build killed midway leaves
        them; a finished one removes its own)."""
        if not self.has_storage():
            return []
        return sorted(str(c.get("containername") or c.get("id"))
                      for c in self._list("containers"))

    def _list(self, what: str) -> list[dict[str, Any]]:
        out = proc.run(["buildah", *self._storage(self.state), what, "--json"],
                       what=f"list the {what} in buildah's storage").stdout
        try:
            items = json.loads(str(out) or "null") or []  # none: `null`
        except ValueError as exc:
            raise ToolError(f"buildah {what} --json printed no JSON: {exc}",
                            hint="check the buildah install (gen infra install)") from exc
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ToolError(f"buildah {what} --json printed no list of objects",
                            hint="check the buildah install (gen infra install)")
        return items

    def remove_stored(self, images: list[str], containers: list[str]) -> None:
        """Remove working containers, then images (by id) from the shared storage."""
        storage = self._storage(self.state)
        if containers:
            proc.run(["buildah", *storage, "rm", *containers],
                     what="remove containers from buildah's storage")
        if images:
            proc.run(["buildah", *storage, "rmi", "-f", *images],
                     what="remove images from buildah's storage")

    def build(self, req: BuildRequest) -> None:
        tmp_root: Path | None = None
        if req.isolated:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            tmp_root = Path(tempfile.mkdtemp(prefix="buildah-", dir=self.state.parent))
            root = tmp_root
        else:
            root = self.state
            root.mkdir(parents=True, exist_ok=True)
        tag = f"localhost/gen-build/{uuid.uuid4().hex[:12]}:latest"
        storage = self._storage(root)
        net = [] if req.network else ["--network", "none"]
        try:
            _run(["buildah", *storage, "bud", "--quiet", "--no-cache", "--pull-always",
                  "--tls-verify=false", "--timestamp", str(req.epoch),
                  "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}", "--platform", req.platform,
                  *net, "--format", "oci", "-t", tag, "-f", str(req.context / "Dockerfile"),
                  str(req.context)], what="build with buildah", req=req)
            req.out_layout.parent.mkdir(parents=True, exist_ok=True)
            # `dir:` honours --disable-compression (`oci:` does not): nothing is compressed
            # only to be inflated again by the normalizer
            export = Path(tempfile.mkdtemp(prefix=".export-", dir=req.out_layout.parent))
            try:
                _run(["buildah", *storage, "push", "--quiet", "--format", "oci",
                      "--disable-compression", tag, f"dir:{export}"],
                     what="export the buildah image", req=req)
                layout_from_dir(export, req.out_layout, req.ref_name)
            finally:
                shutil.rmtree(export, ignore_errors=True)
        finally:
            import subprocess

            subprocess.run(["buildah", *storage, "rmi", "-f", tag], capture_output=True,
                           check=False)
            if tmp_root is not None:
                subprocess.run(["buildah", *storage, "rmi", "-a", "-f"], capture_output=True,
                               check=False)
                shutil.rmtree(tmp_root, ignore_errors=True)


# --------------------------------------------------------------------------------------
# Docker Engine (CLI)
# --------------------------------------------------------------------------------------


class Docker:
    """One daemon: isolated builds run one at a time, each after `builder prune` (BuildKit
    merges identical concurrent solves, so two concurrent builds would not be independent)."""

    name = "docker"
    _isolated_lock = threading.Lock()

    def available(self) -> str | None:
        if not Path(DOCKER_CLI).exists():
            return f"{DOCKER_CLI} is missing (fix: gen infra install)"
        r = proc.run([DOCKER_CLI, "version", "--format", "{{.Server.Version}}"],
                     what="reach the Docker engine", check=False)
        if r.returncode != 0:
            return ("no Docker engine answers at "
                    f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')} (fix: "
                    "gen infra up; eval \"$(gen infra env)\")")
        if shutil.which("skopeo") is None:
            return "skopeo is not installed (fix: gen infra install)"
        return None

    def version(self) -> str:
        out = proc.run([DOCKER_CLI, "version", "--format", "{{.Server.Version}}"],
                       what="ask the Docker engine its version").stdout
        return f"docker {str(out).strip()}"

    def build(self, req: BuildRequest) -> None:
        if not req.isolated:
            self._build(req)
            return
        with self._isolated_lock:
            import subprocess

            subprocess.run([DOCKER_CLI, "builder", "prune", "-a", "-f"], capture_output=True,
                           check=False)
            self._build(req)

    def _build(self, req: BuildRequest) -> None:
        tag = f"gen-build/{uuid.uuid4().hex[:12]}:latest"
        net = [] if req.network else ["--network", "none"]
        with tempfile.TemporaryDirectory(prefix="gen-docker-", dir=req.out_layout.parent) as tmp:
            archive = Path(tmp) / "image.tar"
            try:
                _run([DOCKER_CLI, "build", "--quiet", "--no-cache", "--pull",
                      "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}", "--platform",
                      req.platform, *net, "-t", tag, "-f", str(req.context / "Dockerfile"),
                      str(req.context)], what="build with docker", req=req,
                     extra={"DOCKER_BUILDKIT": "1", "SOURCE_DATE_EPOCH": str(req.epoch)})
                _run([DOCKER_CLI, "save", "-o", str(archive), tag],
                     what="export the docker image", req=req)
            finally:
                import subprocess

                subprocess.run([DOCKER_CLI, "rmi", "-f", tag], capture_output=True, check=False)
            _run(["skopeo", "copy", "--quiet", "--dest-decompress", f"docker-archive:{archive}",
                  f"oci:{req.out_layout}:{req.ref_name}"],
                 what="convert the docker image to an OCI layout", req=req)


# --------------------------------------------------------------------------------------
# docker buildx (BuildKit >= 0.13)
# --------------------------------------------------------------------------------------


class Buildx:
    name = "buildx"

    def available(self) -> str | None:
        r = proc.run([DOCKER_CLI, "buildx", "version"], what="look for docker buildx",
                     check=False) if Path(DOCKER_CLI).exists() else None
        if r is None or r.returncode != 0:
            return "docker buildx is not installed (the Docker CLI here has no buildx plugin)"
        return None

    def version(self) -> str:
        out = proc.run([DOCKER_CLI, "buildx", "version"], what="ask buildx its version").stdout
        return " ".join(str(out).split()[:2])

    def build(self, req: BuildRequest) -> None:
        with tempfile.TemporaryDirectory(prefix="gen-buildx-", dir=req.out_layout.parent) as tmp:
            out = Path(tmp) / "image.tar"
            net = [] if req.network else ["--network", "none"]
            _run([DOCKER_CLI, "buildx", "build", "--no-cache", "--platform", req.platform, *net,
                  "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}", "--provenance=false",
                  "--sbom=false", "--output",
                  f"type=oci,dest={out},rewrite-timestamp=true",
                  "-f", str(req.context / "Dockerfile"), str(req.context)],
                 what="build with docker buildx", req=req,
                 extra={"SOURCE_DATE_EPOCH": str(req.epoch)})
            _run(["skopeo", "copy", "--quiet", f"oci-archive:{out}",
                  f"oci:{req.out_layout}:{req.ref_name}"],
                 what="unpack the buildx OCI archive", req=req)


ENGINES = ("buildah", "docker", "buildx")


def get_engine(name: str, state: Path) -> Engine:
    """`auto` picks the first available of buildah, buildx, docker."""
    candidates: dict[str, Engine] = {"buildah": Buildah.in_state(state), "docker": Docker(),
                                     "buildx": Buildx()}
    if name == "auto":
        reasons = []
        for n in ("buildah", "buildx", "docker"):
            why = candidates[n].available()
            if why is None:
                return candidates[n]
            reasons.append(why)
        raise ToolError("no container engine is usable: " + "; ".join(reasons),
                        hint="gen infra up")
    if name not in candidates:
        raise UsageError(f"unknown engine '{name}'",
                         hint=f"use one of: auto, {', '.join(ENGINES)}")
    engine = candidates[name]
    why = engine.available()
    if why is not None:
        raise ToolError(f"engine {name} is not usable: {why}")
    return engine


def available_engines(state: Path) -> dict[str, str | None]:
    """name -> None if usable, else the reason it is not."""
    out: dict[str, str | None] = {}
    engines: list[tuple[str, Engine]] = [("buildah", Buildah.in_state(state)),
                                         ("docker", Docker()), ("buildx", Buildx())]
    for n, e in engines:
        out[n] = e.available()
    return out
