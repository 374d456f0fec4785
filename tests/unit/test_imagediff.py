"""imagediff: its own tar reader agrees with tarfile, and a diff names exactly what differs."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.image.diff import compare_images, layer_entries
from generator.image.oci import MT_LAYER_GZIP, MT_LAYER_TAR, Descriptor, Layout

_name = st.from_regex(r"[a-z][a-z0-9_.-]{0,40}(/[a-z][a-z0-9_.-]{0,90}){0,2}", fullmatch=True)


def _tar(files: dict[str, bytes], fmt: int, links: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        d = tarfile.TarInfo("dir")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.mtime = len(data), 0o640, 1000, 1234567890
            info.uname = "someone"
            tar.addfile(info, io.BytesIO(data))
        if links and files:
            ln = tarfile.TarInfo("dir/link")
            ln.type, ln.linkname = tarfile.SYMTYPE, "/" + next(iter(files)) * 2
            tar.addfile(ln)
    return buf.getvalue()


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_name, st.binary(max_size=2000), max_size=8),
       st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]),
       st.booleans())
def test_reader_agrees_with_tarfile(tmp_path_factory, files, fmt, compress) -> None:  # type: ignore[no-untyped-def]
    if fmt == tarfile.USTAR_FORMAT:
        files = {k: v for k, v in files.items() if len(k) <= 100}
    data = _tar(files, fmt, links=fmt != tarfile.USTAR_FORMAT)
    path = tmp_path_factory.mktemp("t") / "layer"
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    got, size = layer_entries(str(path), MT_LAYER_GZIP if compress else MT_LAYER_TAR)
    assert size == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert set(got) == {m.name for m in members}
        for m in members:
            e = got[m.name]
            assert (e["mode"], e["uid"], e["linkname"], e["uname"]) == \
                (oct(m.mode), m.uid, m.linkname, m.uname)
            if m.isreg():
                assert e["sha256"] == hashlib.sha256(tar.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]


def _image(root: Path, layers: list[bytes], env: str) -> tuple[Layout, Descriptor]:
    lay = Layout.create(root)
    descs = []
    for data in layers:
        d = lay.put_bytes(data, MT_LAYER_TAR)
        descs.append((d, d.digest))
    m = lay.write_image(descs, {"created": "2023-11-14T22:13:20Z",
                                "config": {"Env": [env]}}, "linux/amd64")
    return lay, m


def test_diff_names_the_layer_the_file_and_the_field(tmp_path: Path) -> None:
    base = _tar({"usr/bin/tool": b"x" * 100}, tarfile.PAX_FORMAT)
    la, da = _image(tmp_path / "a", [base, _tar({"app/a.txt": b"one", "app/same": b"s"},
                                                tarfile.PAX_FORMAT)], "A=1")
    lb, db = _image(tmp_path / "b", [base, _tar({"app/a.txt": b"two", "app/same": b"s",
                                                 "app/new": b"n"}, tarfile.PAX_FORMAT)], "A=2")
    diff = compare_images(la, da, lb, db, workers=1)
    assert not diff.identical and diff.layers_skipped == 1
    [layer] = diff.layers
    assert layer.index == 1
    by_path = {e.path: e for e in layer.entries}
    assert by_path["app/a.txt"].change == "changed"
    assert set(by_path["app/a.txt"].fields) == {"sha256"}
    assert by_path["app/new"].change == "added"
    assert "app/same" not in by_path
    assert [c["field"] for c in diff.config] == ["config.Env"]
    text = "\n".join(diff.text())
    assert "changed  /app/a.txt: content" in text and "added    /app/new" in text
    assert compare_images(la, da, la, da).identical


def test_flattened_compare_ignores_layer_layout_but_not_files(tmp_path: Path) -> None:
    """Cross-engine: one squashed layer vs the same files spread over layers with whiteouts."""
    base = _tar({"usr/bin/tool": b"x"}, tarfile.PAX_FORMAT, links=False)
    squashed = _tar({"app/a": b"1", "app/b": b"2"}, tarfile.PAX_FORMAT, links=False)
    step1 = _tar({"app/a": b"1", "app/tmp": b"scratch"}, tarfile.PAX_FORMAT, links=False)
    step2 = _tar({"app/.wh.tmp": b"", "app/b": b"2"}, tarfile.PAX_FORMAT, links=False)
    la, da = _image(tmp_path / "a", [base, squashed], "A=1")
    lb, db = _image(tmp_path / "b", [base, step1, step2], "A=1")
    from generator.image.diff import compare_flattened

    # the layouts differ, and the plain compare says so ...
    assert not compare_images(la, da, lb, db, workers=1).identical
    # ... but the files and runtime config are the same (B deletes what it created itself)
    flat = compare_flattened(la, da, lb, db)
    assert flat.identical and flat.layers == [] and flat.layers_skipped == 1
    # a real content difference is found through the flattening
    step2b = _tar({"app/.wh.tmp": b"", "app/b": b"3"}, tarfile.PAX_FORMAT, links=False)
    lc, dc = _image(tmp_path / "c", [base, step1, step2b], "A=1")
    flat = compare_flattened(la, da, lc, dc)
    changed = {e.path for layer in flat.layers for e in layer.entries if e.change == "changed"}
    assert changed == {"app/b"}
