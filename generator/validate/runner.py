"""Run a task's tests in a container of its built image: the one place validate talks to an engine.

Two runners share one CLI driver (their command lines are the same):

- `docker`: the Docker Engine through `/usr/bin/docker` (`DOCKER_HOST` picks the daemon). The
  default: it works on these machines.
- `podman`: daemonless. On machines whose processes lack CAP_SYS_RESOURCE, podman's default
  rlimits (nofile/nproc 1048576) make runc fail with "error setting rlimit type 7: operation not
  permitted"; both runners therefore pass explicit, lower `--ulimit`s (lowering a limit is always
  allowed), which makes `podman run` work there and keeps both engines' containers alike.

A container runs `sleep <lifetime>` with `--rm`, the network off (`--network none`), a memory
limit (swap included), a CPU share, a pids limit and a fixed hostname; files are copied in with
`cp` (a tar stream) and steps run with `exec`, each under a wall-clock limit. A step that
overruns its limit gets the container killed. Every container carries the labels it was given
and is removed by id when its run ends; the `sleep` lifetime bounds it even if gen itself dies.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from generator.core import proc
from generator.core.errors import ToolError, UsageError
from generator.image.engines.base import DOCKER_CLI

__all__ = [
    "RUNNERS",
    "Container",
    "ContainerSpec",
    "DockerRunner",
    "ExecResult",
    "PodmanRunner",
    "Runner",
    "ensure_available",
    "get_runner",
    "make_tar",
    "remove_all",
]

RUNNERS = ("docker", "podman")
# Lower than any sane host limit (so no CAP_SYS_RESOURCE is needed) and plenty for tests.
ULIMITS = ("nofile=4096:4096", "nproc=4096:4096")
PIDS_LIMIT = 4096


@dataclass(frozen=True)
class ContainerSpec:
    env: Mapping[str, str]
    memory_mb: int
    cpus: float
    lifetime_sec: float  # the container's own `sleep`: a bound even if gen dies
    labels: Mapping[str, str] = field(default_factory=dict)
    hostname: str = "gen-validate"
    name: str | None = None


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when the step was killed at its time limit
    output: str  # stdout and stderr, merged inside the container
    seconds: float
    timed_out: bool = False


class Container(Protocol):
    id: str

    def put_files(self, files: Mapping[str, tuple[bytes, int]]) -> None:
        """Copy files in: absolute path -> (content, mode)."""

    def exec(self, script: str, *, timeout: float) -> ExecResult:
        """Run `bash -c script` (stderr merged into stdout); kill the container on timeout."""

    def kill(self) -> None: ...

    def remove(self) -> None: ...


class Runner(Protocol):
    name: str

    def available(self) -> str | None:
        """None when usable, else why not (one line)."""

    def version(self) -> str: ...

    def ensure_image(self, ref: str, layout: Path | None = None, name: str = "") -> str:
        """Make the image present in the engine's store and return the reference to run:
        `ref` (repository@sha256:...) pulled from its registry, or else the image `name` of
        the OCI layout `layout` (what `gen build` wrote; also works after --no-push)."""

    def start(self, ref: str, spec: ContainerSpec) -> Container: ...

    def containers(self, label: str) -> list[str]:
        """Ids of containers (running or not) carrying `label` (key=value)."""


# Containers this process started and has not removed yet: `remove_all` reaps them.
_LIVE: dict[str, _CliContainer] = {}
_LIVE_LOCK = threading.Lock()


def remove_all() -> list[str]:
    """Remove every container this process started that is still around (by id)."""
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for c in live:
        c.remove()
    return [c.id for c in live]


def make_tar(files: Mapping[str, tuple[bytes, int]], *, mtime: int = 0) -> bytes:
    """A tar of `files` (absolute paths) rooted at /, with parent directories, deterministic."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            rel = PurePosixPath(path.lstrip("/"))
            for parent in reversed(rel.parents[:-1] if len(rel.parents) > 1 else []):
                name = parent.as_posix()
                if name not in dirs:
                    dirs.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
                    tar.addfile(info)
            data, mode = files[path]
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _CliContainer:
    def __init__(self, runner: _CliRunner, cid: str) -> None:
        self.runner = runner
        self.id = cid
        self._removed = False

    def put_files(self, files: Mapping[str, tuple[bytes, int]]) -> None:
        # podman (before 4.7) writes a `cp -` stream to a temp file in $TMPDIR (default
        # /var/tmp) and never deletes it (podman issue 19496): one file per copy, forever.
        # A private TMPDIR, deleted right after, keeps the machine clean.
        spool = tempfile.TemporaryDirectory(prefix="gen-cp-") \
            if self.runner.spools_cp_stdin else contextlib.nullcontext(None)
        with spool as tmpdir:
            r = proc.run([self.runner.program, "cp", "-", f"{self.id}:/"],
                         what=f"copy files into container {self.id[:12]}",
                         input=make_tar(files), timeout=120, check=False,
                         extra_env=None if tmpdir is None else {"TMPDIR": tmpdir})
        if r.returncode != 0:
            why = proc.failure_detail(self.runner.name, r.stderr, lines=4)
            raise ToolError(f"cannot copy files into container {self.id[:12]} "
                            f"({self.runner.name} cp): {why}")

    def exec(self, script: str, *, timeout: float) -> ExecResult:
        argv = [self.runner.program, "exec", self.id, "bash", "-c", f"{{ {script}\n}} 2>&1"]
        t0 = time.monotonic()
        try:
            r = proc.run(argv, what=f"run a step in container {self.id[:12]}", timeout=timeout,
                         check=False, text=False)
        except proc.TimedOut as exc:
            self.kill()  # the exec'd processes live in the container, not in our client
            partial = exc.stdout or b""
            return ExecResult(None, partial.decode("utf-8", "replace")
                              if isinstance(partial, bytes) else str(partial),
                              time.monotonic() - t0, timed_out=True)
        out = r.stdout.decode("utf-8", "replace")
        err = r.stderr.decode("utf-8", "replace")
        if r.returncode in (125, 126, 127) and not out and err:
            # the engine itself failed to exec (container gone, OCI runtime error)
            raise ToolError(f"{self.runner.name} exec failed in container {self.id[:12]}: "
                            f"{proc.failure_detail(self.runner.name, err, lines=4)}",
                            hint=self.runner.fix_hint)
        return ExecResult(r.returncode, out + err, time.monotonic() - t0)

    def kill(self) -> None:
        proc.run([self.runner.program, "kill", self.id],
                 what=f"kill container {self.id[:12]}", timeout=60, check=False, text=False)

    def remove(self) -> None:
        if self._removed:
            return
        proc.run([self.runner.program, "rm", "-f", self.id],
                 what=f"remove container {self.id[:12]}", timeout=120, check=False, text=False)
        self._removed = True
        with _LIVE_LOCK:
            _LIVE.pop(self.id, None)


class _CliRunner:
    name = ""
    program = ""
    fix_hint = ""
    _tag_prefix = ""  # of the local name a layout is loaded under
    spools_cp_stdin = False  # `cp -` leaves a temp file behind (see put_files)
    _image_lock = threading.Lock()

    def _base(self) -> list[str]:
        return [self.program]

    def _pull_args(self, ref: str) -> list[str]:
        return []

    def available(self) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def version(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _has_image(self, ref: str) -> bool:
        r = proc.run([self.program, "image", "inspect", "--format", "{{.Id}}", ref],
                     what=f"look for {ref} in {self.name}'s images", timeout=60, check=False,
                     text=False)
        return r.returncode == 0

    def image_id(self, ref: str) -> str:
        """The engine's id of the image `ref` names (a ToolError when it has none)."""
        r = proc.run([self.program, "image", "inspect", "--format", "{{.Id}}", ref],
                     what=f"inspect {ref}", timeout=120, fix=self.fix_hint)
        return str(r.stdout).strip()

    def tag(self, ref: str, name: str) -> None:
        """Tag the image `ref` (already in the engine) as `name`."""
        proc.run([self.program, "tag", ref, name], what=f"tag {ref} as {name}", timeout=120,
                 fix=self.fix_hint)

    def untag(self, name: str) -> None:
        """Remove the tag `name`; a missing tag is not an error."""
        proc.run([self.program, "rmi", name], what=f"untag {name}", timeout=120, check=False)

    def _load_layout(self, layout: Path, name: str, tag: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def ensure_image(self, ref: str, layout: Path | None = None, name: str = "") -> str:
        with self._image_lock:
            if self._has_image(ref):
                return ref
            digest = ref.rsplit("@", 1)[-1]
            tag = f"{self._tag_prefix}gen-validate/{name or 'image'}:{digest.split(':')[-1][:32]}"
            if self._has_image(tag):
                return tag
            pulled = None
            if not ref.startswith("localhost/"):
                pulled = proc.run([self.program, "pull", "-q", *self._pull_args(ref), ref],
                                  what=f"pull {ref} into {self.name}", timeout=1800,
                                  check=False)
                if pulled.returncode == 0:
                    return ref
            if layout is not None and (layout / "index.json").is_file():
                self._load_layout(layout, name, tag)
                return tag
            why = proc.failure_detail(self.name, pulled.stderr, lines=4) if pulled is not None \
                else "not in any registry"
            raise ToolError(f"cannot get image {ref} into {self.name}: {why}; and no OCI "
                            f"layout to load it from ({layout})",
                            hint="run `gen build` (it records the layout and pushes the image)")

    def start(self, ref: str, spec: ContainerSpec) -> Container:
        name = spec.name or f"gen-validate-{uuid.uuid4().hex[:12]}"
        mem = f"{int(spec.memory_mb)}m"
        # the engine refuses more CPUs than the host has; the share is a limit, not a promise
        cpus = min(spec.cpus, float(os.cpu_count() or spec.cpus))
        argv = [self.program, "run", "-d", "--rm", "--name", name, "--network", "none",
                "--hostname", spec.hostname, "--memory", mem, "--memory-swap", mem,
                "--cpus", f"{cpus:g}", "--pids-limit", str(PIDS_LIMIT)]
        for ul in ULIMITS:
            argv += ["--ulimit", ul]
        for k, v in sorted(spec.labels.items()):
            argv += ["--label", f"{k}={v}"]
        for k, v in sorted(spec.env.items()):
            argv += ["-e", f"{k}={v}"]
        argv += ["--entrypoint", "sleep", ref, str(int(spec.lifetime_sec))]
        r = proc.run(argv, what=f"start a container of {ref}", timeout=300, check=False)
        cid = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
        if r.returncode != 0 or not cid:
            proc.run([self.program, "rm", "-f", name], what=f"remove container {name}",
                     timeout=60, check=False, text=False)
            raise ToolError(f"{self.name} cannot start a container of {ref}: "
                            f"{proc.failure_detail(self.name, r.stderr, lines=4)}",
                            hint=self.fix_hint)
        c = _CliContainer(self, cid)
        with _LIVE_LOCK:
            _LIVE[cid] = c
        return c

    def containers(self, label: str) -> list[str]:
        r = proc.run([self.program, "ps", "-a", "-q", "--no-trunc", "--filter",
                      f"label={label}"], what=f"list the containers labelled {label}",
                     timeout=60, check=False)
        return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]


class DockerRunner(_CliRunner):
    name = "docker"
    fix_hint = ("start the engine: gen infra up; eval \"$(gen infra "
                "env)\"")

    def __init__(self, program: str = DOCKER_CLI) -> None:
        self.program = program

    def available(self) -> str | None:
        if not os.path.exists(self.program) and shutil.which(self.program) is None:
            return f"{self.program} is missing (fix: gen infra install)"
        r = proc.run([self.program, "version", "--format", "{{.Server.Version}}"],
                     what="reach the Docker engine", timeout=60, check=False)
        if r.returncode != 0:
            return ("no Docker engine answers at "
                    f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')} "
                    f"(fix: {self.fix_hint})")
        return None

    def version(self) -> str:
        out = proc.run([self.program, "version", "--format", "{{.Server.Version}}"],
                       what="ask the Docker engine its version").stdout
        return f"docker {str(out).strip()}"

    def _load_layout(self, layout: Path, name: str, tag: str) -> None:
        # Docker 20.10 cannot load an OCI layout itself: skopeo hands it to the daemon.
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        proc.run(["skopeo", "copy", "--quiet", "--dest-daemon-host", host,
                  f"oci:{layout}:{name}", f"docker-daemon:{tag}"],
                 what=f"load the OCI layout {layout} into the Docker engine", timeout=1800)


class PodmanRunner(_CliRunner):
    name = "podman"
    _tag_prefix = "localhost/"
    spools_cp_stdin = True
    fix_hint = ("podman could not run the container here; use the Docker engine "
                "(--engine docker) or fix podman's runtime (see docs/validate.md)")

    def __init__(self, program: str = "podman") -> None:
        self.program = program

    def _pull_args(self, ref: str) -> list[str]:
        host = ref.split("/", 1)[0]
        # the local registry speaks plain http (like dockerd's default for 127.0.0.0/8)
        if host.startswith(("127.", "localhost")):
            return ["--tls-verify=false"]
        return []

    def available(self) -> str | None:
        if shutil.which(self.program) is None:
            return "podman is not installed (fix: apt-get install podman)"
        r = proc.run([self.program, "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                     what="ask podman for its OCI runtime", timeout=60, check=False)
        if r.returncode != 0:
            return f"podman does not work here: {proc.failure_detail('podman', r.stderr, lines=4)}"
        return None

    def version(self) -> str:
        out = proc.run([self.program, "version", "--format", "{{.Client.Version}}"],
                       what="ask podman its version").stdout
        return f"podman {str(out).strip()}"

    def _load_layout(self, layout: Path, name: str, tag: str) -> None:
        proc.run(["skopeo", "copy", "--quiet", f"oci:{layout}:{name}",
                  f"containers-storage:{tag}"],
                 what=f"load the OCI layout {layout} into podman's storage", timeout=1800)


def get_runner(name: str = "auto") -> Runner:
    """The runner called `name`; `auto` = docker when an engine answers, else podman."""
    if name == "auto":
        why: list[str] = []
        for cand in RUNNERS:
            r = get_runner(cand)
            problem = r.available()
            if problem is None:
                return r
            why.append(f"{cand}: {problem}")
        raise ToolError("no container engine can run tests: " + "; ".join(why),
                        hint="gen infra up")
    if name == "docker":
        return DockerRunner()
    if name == "podman":
        return PodmanRunner()
    raise UsageError(f"unknown engine '{name}' (choose one of: auto, {', '.join(RUNNERS)})")


def ensure_available(runner: Runner) -> None:
    problem = runner.available()
    if problem is not None:
        raise ToolError(f"engine {runner.name} is not usable: {problem}")
