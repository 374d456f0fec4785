"""RFC 8785 canonical JSON: the bytes gen hashes and signs (the release manifest, the artifact
cache's index), the same for equal values on any machine."""

from __future__ import annotations

from typing import Any

import rfc8785


def canonical(obj: Any) -> bytes:
    """RFC 8785 canonical JSON bytes."""
    return rfc8785.dumps(obj)
