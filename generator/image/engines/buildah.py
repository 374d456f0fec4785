"""buildah: daemonless, `bud --timestamp <epoch>`; a storage root of its own per isolated build."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from generator.core import proc
from generator.core.errors import ToolError
from generator.image.engines.base import BuildRequest, StoredImage, parse_size, run_engine
from generator.image.oci import layout_from_dir

__all__ = ["Buildah"]


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
            run_engine(["buildah", *storage, "bud", "--quiet", "--no-cache", "--pull-always",
                        "--tls-verify=false", "--timestamp", str(req.epoch),
                        "--build-arg", f"SOURCE_DATE_EPOCH={req.epoch}", "--platform",
                        req.platform, *net, "--format", "oci", "-t", tag,
                        "-f", str(req.context / "Dockerfile"), str(req.context)],
                       what="build with buildah", req=req)
            req.out_layout.parent.mkdir(parents=True, exist_ok=True)
            # `dir:` honours --disable-compression (`oci:` does not): nothing is compressed
            # only to be inflated again by the normalizer
            export = Path(tempfile.mkdtemp(prefix=".export-", dir=req.out_layout.parent))
            try:
                run_engine(["buildah", *storage, "push", "--quiet", "--format", "oci",
                            "--disable-compression", tag, f"dir:{export}"],
                           what="export the buildah image", req=req)
                layout_from_dir(export, req.out_layout, req.ref_name)
            finally:
                shutil.rmtree(export, ignore_errors=True)
        finally:
            # the build's own image, and in an isolated root every image it pulled: failures
            # are ignored (the root goes anyway; the shared one is pruned by `gen gc`)
            proc.run(["buildah", *storage, "rmi", "-f", tag],
                     what="remove the build's image from buildah's storage", check=False,
                     text=False)
            if tmp_root is not None:
                proc.run(["buildah", *storage, "rmi", "-a", "-f"],
                         what="empty the build's own buildah storage", check=False, text=False)
                shutil.rmtree(tmp_root, ignore_errors=True)
