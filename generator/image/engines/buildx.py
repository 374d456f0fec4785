"""docker buildx (BuildKit >= 0.13): an OCI archive, timestamps rewritten, unpacked by skopeo."""

from __future__ import annotations

import tempfile
from pathlib import Path

from generator.core import proc
from generator.image.engines import base
from generator.image.engines.base import BuildRequest, run_engine

__all__ = ["Buildx"]


class Buildx:
    name = "buildx"

    def available(self) -> str | None:
        cli = base.DOCKER_CLI
        r = proc.run([cli, "buildx", "version"], what="look for docker buildx",
                     check=False) if Path(cli).exists() else None
        if r is None or r.returncode != 0:
            return "docker buildx is not installed (the Docker CLI here has no buildx plugin)"
        return None

    def version(self) -> str:
        out = proc.run([base.DOCKER_CLI, "buildx", "version"],
                       what="ask buildx its version").stdout
        return " ".join(str(out).split()[:2])

    def build(self, req: BuildRequest) -> None:
        with tempfile.TemporaryDirectory(prefix="gen-buildx-", dir=req.out_layout.parent) as tmp:
            out = Path(tmp) / "image.tar"
            net = [] if req.network else ["--network", "none"]
            run_engine([base.DOCKER_CLI, "buildx", "build", "--no-cache", "--platform",
                        req.platform, *net, "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}",
                        "--provenance=false", "--sbom=false", "--output",
                        f"type=oci,dest={out},rewrite-timestamp=true",
                        "-f", str(req.context / "Dockerfile"), str(req.context)],
                       what="build with docker buildx", req=req,
                       extra={"SOURCE_DATE_EPOCH": str(req.epoch)})
            run_engine(["skopeo", "copy", "--quiet", f"oci-archive:{out}",
                        f"oci:{req.out_layout}:{req.ref_name}"],
                       what="unpack the buildx OCI archive", req=req)
