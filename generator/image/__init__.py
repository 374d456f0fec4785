"""Stage 3, images: the engines (engines), base images (base), hermetic builds (build) and their
OCI normalization (oci, normalize), the reproducibility proof (verify, diff), the registry
(registry), the local infrastructure (infra) and garbage collection (gc)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "build_base": "base",
    "build_project": "build",
    "verify_project": "verify",
    "collect_garbage": "gc",
    "available_engines": "engines.select",
    "load_images": "images",
    "save_images": "images",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
