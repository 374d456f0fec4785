"""Stage 5, releases: the pre-release checks (preflight), the manifest (manifest), signing (sign),
`gen release` / `gen verify-release` (release) and sharded runs (shard)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "make_release": "release",
    "verify_release": "release",
    "check_release": "release",
    "merge_shards": "shard",
    "shard_tasks": "shard",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
