"""Container engines behind one interface (`base.Engine`): build a context into an OCI image
layout. One module per engine:

- `buildah`: daemonless, `bud --timestamp <epoch>` (natively reproducible), its own storage
  root per build when asked (no shared cache), RUN steps with `--network none`.
- `docker`: the Docker Engine through the CLI (`/usr/bin/docker`; the docker SDK cannot drive
  BuildKit), `DOCKER_BUILDKIT=1`, `--network none`, `--no-cache`; the image is exported with
  `docker save` and converted to an OCI layout by skopeo. Its raw output is not reproducible
  (timestamps, whiteouts); gen's normalizer makes it so.
- `buildx`: `docker buildx build --output type=oci,rewrite-timestamp=true` with BuildKit
  >= 0.13, used when the buildx plugin is present.

`select` picks one by name (`get_engine`, `available_engines`). Nothing else in gen runs an
engine: build/verify/validate go through it, and every engine call goes through core/proc.
"""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "BuildRequest": "base",
    "Engine": "base",
    "StoredImage": "base",
    "parse_size": "base",
    "Buildah": "buildah",
    "Docker": "docker",
    "Buildx": "buildx",
    "ENGINES": "select",
    "available_engines": "select",
    "get_engine": "select",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
