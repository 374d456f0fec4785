"""Stage 1, pinning inputs: the lockfile formats (lockfiles), `gen lock` (lock: pip via uv, apt
via aptlock, declared bases via baselock), `gen fetch` into the store (fetch) and the registry
artifact cache (artifact_cache)."""

from __future__ import annotations

from typing import Any

from generator.core.lazy import resolve

_EXPORTS = {
    "read_lockset": "lockset",
    "LockSet": "lockset",
    "lock_project": "lock",
    "fetch_project": "fetch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    return resolve(__name__, _EXPORTS, name)
