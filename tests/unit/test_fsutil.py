"""fsutil's fast reads give exactly what open().read() gives, whatever size was stat'ed."""

from __future__ import annotations

import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.fsutil import read_file, read_file_stat, read_text


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
