"""The build's input key (pure: no engine)."""

from __future__ import annotations

from pathlib import Path


def test_build_input_key_names_the_task(tmp_path: Path) -> None:
    """Two tasks with byte-identical build contexts get distinct keys (one cache entry,
    layout and push each), and a key changes with any context byte."""
    from generator.image.build import input_key

    for name in ("a", "b"):
        (tmp_path / name / "files").mkdir(parents=True)
        (tmp_path / name / "Dockerfile").write_text("FROM x@sha256:" + "0" * 64 + "\n")
        (tmp_path / name / "files" / "f").write_text("same\n")

    def key(name: str) -> str:
        return input_key(tmp_path / name, [], platform="linux/amd64", epoch=1, engine="e 1")

    assert key("a") != key("b") and key("a") == key("a")
    before = key("a")
    (tmp_path / "a" / "files" / "f").write_text("Same\n")
    assert key("a") != before
