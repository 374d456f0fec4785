"""Stage 6, `gen export`: the dataset in the formats tb, Harbor and swebench load, one module each
(tb, harbor, swebench; shared: common, toml; the driver: run), and their images put into Docker
(docker)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "export": "run",
    "load_into_docker": "docker",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
