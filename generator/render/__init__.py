"""Stage 2, `gen render`: specs + templates + locks -> dataset/, pure and byte-deterministic."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "render": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
