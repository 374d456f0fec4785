"""fsutil's fast reads give exactly what open().read() gives, whatever size was stat'ed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.core.fsutil import read_file, read_file_stat, read_text


def _scratch(data: bytes) -> str:
    fd, name = tempfile.mkstemp()
    os.write(fd, data)
    os.close(fd)
    return name


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=70_000), stated=st.one_of(st.none(), st.integers(0, 70_000)))
def test_read_file_is_the_whole_file(data: bytes, stated: int | None) -> None:
    # `stated` plays a stale stat: the file may have grown or shrunk since
    name = _scratch(data)
    try:
        assert read_file(name, stated) == data
    finally:
        os.unlink(name)


@given(st.text(alphabet=st.sampled_from("ab\r\n\u00e9"), max_size=40))
def test_read_text_is_open_read(text: str) -> None:
    name = _scratch(text.encode("utf-8"))
    try:
        with open(name, encoding="utf-8") as f:
            assert read_text(name) == f.read()
    finally:
        os.unlink(name)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=70_000))
def test_read_file_stat_is_the_file_and_its_stat(data: bytes) -> None:
    name = _scratch(data)
    try:
        got, st = read_file_stat(name)
        assert got == data
        now = os.stat(name)
        assert (st.st_size, st.st_mtime_ns, st.st_ino) == (now.st_size, now.st_mtime_ns, now.st_ino)
    finally:
        os.unlink(name)


def test_link_or_copy_links_and_falls_back_to_a_copy(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from generator.core.fsutil import link_or_copy

    src = tmp_path / "store" / "abc"
    src.parent.mkdir()
    src.write_bytes(b"blob")
    dst = tmp_path / "layout" / "blobs" / "sha256" / "abc"
    assert link_or_copy(src, dst) is True
    assert dst.read_bytes() == b"blob" and dst.stat().st_ino == src.stat().st_ino
    # another file system: a copy, and an existing name is replaced whole
    calls: list[tuple[Path, Path]] = []

    def no_link(a: Path, b: Path) -> None:
        calls.append((a, b))
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    other = tmp_path / "other"
    other.write_bytes(b"old")
    assert link_or_copy(src, other) is False and calls
    assert other.read_bytes() == b"blob" and other.stat().st_ino != src.stat().st_ino
    # a copy that fails half-way leaves neither the temp file nor a partial destination
    def half_copy(a: Path, b: Path) -> None:
        Path(b).write_bytes(b"bl")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("generator.core.fsutil.shutil.copyfile", half_copy)
    with pytest.raises(OSError, match="No space left"):
        link_or_copy(src, tmp_path / "layout" / "x")
    assert sorted(p.name for p in (tmp_path / "layout").iterdir()) == ["blobs"]
