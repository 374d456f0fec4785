"""A verify-reproducible verdict per task: byte-identical builds, and the image in use (the
one images.json records) is what the inputs build. The report carries it as `ok`, which gen
release reads rather than re-deriving the rule."""

from __future__ import annotations

from typing import Any

import pytest

from generator.image.verify import TaskVerdict


def _verdict(identical: bool, recorded: dict[str, Any] | None) -> TaskVerdict:
    d = "sha256:" + "a" * 64
    return TaskVerdict(task="t", identical=identical, raw_identical=False, digest_a=d,
                       digest_b=d, raw_a=d, raw_b=d, engine_a="buildah 1", engine_b="buildah 1",
                       recorded=recorded)


@pytest.mark.parametrize("identical, recorded, ok", [
    (True, None, True),  # nothing recorded: nothing to compare
    (True, {"matches": True}, True),
    (True, {"matches": None, "why": "stale"}, True),  # not comparable: no failure
    (True, {"matches": False}, False),  # the image in use is not what the inputs build
    (False, None, False),
    (False, {"matches": True}, False),
])
def test_ok_in_the_report(identical: bool, recorded: dict[str, Any] | None, ok: bool) -> None:
    v = _verdict(identical, recorded)
    assert v.ok is ok
    assert v.to_json()["ok"] is ok
