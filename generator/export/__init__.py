"""Stage 6, `gen export`: the dataset in the formats tb, Harbor and swebench load."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "export": "export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
