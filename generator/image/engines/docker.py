"""The Docker Engine through its CLI: `docker build`, `docker save`, skopeo to an OCI layout."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

from generator.core import proc
from generator.image.engines import base
from generator.image.engines.base import BuildRequest, run_engine

__all__ = ["Docker"]


class Docker:
    """One daemon: isolated builds run one at a time, each after `builder prune` (BuildKit
    merges identical concurrent solves, so two concurrent builds would not be independent)."""

    name = "docker"
    _isolated_lock = threading.Lock()

    def available(self) -> str | None:
        cli = base.DOCKER_CLI
        if not Path(cli).exists():
            return f"{cli} is missing (fix: gen infra install)"
        r = proc.run([cli, "version", "--format", "{{.Server.Version}}"],
                     what="reach the Docker engine", check=False)
        if r.returncode != 0:
            return ("no Docker engine answers at "
                    f"{os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')} (fix: "
                    "gen infra up; eval \"$(gen infra env)\")")
        if shutil.which("skopeo") is None:
            return "skopeo is not installed (fix: gen infra install)"
        return None

    def version(self) -> str:
        out = proc.run([base.DOCKER_CLI, "version", "--format", "{{.Server.Version}}"],
                       what="ask the Docker engine its version").stdout
        return f"docker {str(out).strip()}"

    def build(self, req: BuildRequest) -> None:
        if not req.isolated:
            self._build(req)
            return
        with self._isolated_lock:
            proc.run([base.DOCKER_CLI, "builder", "prune", "-a", "-f"],
                     what="empty the BuildKit cache", check=False, text=False)
            self._build(req)

    def _build(self, req: BuildRequest) -> None:
        cli = base.DOCKER_CLI
        tag = f"gen-build/{uuid.uuid4().hex[:12]}:latest"
        net = [] if req.network else ["--network", "none"]
        with tempfile.TemporaryDirectory(prefix="gen-docker-", dir=req.out_layout.parent) as tmp:
            archive = Path(tmp) / "image.tar"
            try:
                run_engine([cli, "build", "--quiet", "--no-cache", "--pull",
                            "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}", "--platform",
                            req.platform, *net, "-t", tag, "-f", str(req.context / "Dockerfile"),
                            str(req.context)], what="build with docker", req=req,
                           extra={"DOCKER_BUILDKIT": "1", "SOURCE_DATE_EPOCH": str(req.epoch)})
                run_engine([cli, "save", "-o", str(archive), tag],
                           what="export the docker image", req=req)
            finally:
                proc.run([cli, "rmi", "-f", tag], what="remove the build's image from docker",
                         check=False, text=False)
            run_engine(["skopeo", "copy", "--quiet", "--dest-decompress",
                        f"docker-archive:{archive}", f"oci:{req.out_layout}:{req.ref_name}"],
                       what="convert the docker image to an OCI layout", req=req)
