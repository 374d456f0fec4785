"""The layer normalizer: a fixed point, independent of entry order and metadata noise, and
never hiding a content difference."""

from __future__ import annotations

import io
import tarfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.image.normalize import LayerStats, normalize_tar

EPOCH = 1_700_000_000

_name = st.from_regex(r"[a-z][a-z0-9_.-]{0,8}(/[a-z][a-z0-9_.-]{0,8}){0,2}", fullmatch=True)
_entry = st.fixed_dictionaries({
    "data": st.binary(max_size=300),
    "mode": st.sampled_from([0o644, 0o755, 0o600, 0o4755]),
    "uid": st.integers(0, 2000),
    "gid": st.integers(0, 2000),
    "mtime": st.integers(0, 2 * EPOCH),
    "uname": st.sampled_from(["", "root", "builder"]),
    "atime": st.integers(0, 2 * EPOCH),
})
_layer = st.dictionaries(_name, _entry, min_size=1, max_size=12).filter(
    lambda d: not any(a != b and b.startswith(a + "/") for a in d for b in d))


def make_tar(entries: dict[str, dict[str, Any]], order: list[str], *, fmt: int = tarfile.PAX_FORMAT,
             noise: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name in order:
            e = entries[name]
            info = tarfile.TarInfo(name)
            info.size = len(e["data"])
            info.mode, info.uid, info.gid, info.mtime = e["mode"], e["uid"], e["gid"], e["mtime"]
            if noise:
                info.uname = info.gname = e["uname"]
                if fmt == tarfile.PAX_FORMAT:
                    info.pax_headers = {"atime": str(e["atime"]), "ctime": str(e["atime"])}
            tar.addfile(info, io.BytesIO(e["data"]))
    return buf.getvalue()


def norm(data: bytes) -> bytes:
    out = io.BytesIO()
    normalize_tar(io.BytesIO(data), out, EPOCH, LayerStats(0))
    return out.getvalue()


def _read(tar: tarfile.TarFile, m: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(m)
    return f.read() if f is not None else b""


def members(data: bytes) -> dict[str, tuple[Any, ...]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m.mode, m.uid, m.gid, m.mtime, m.uname, _read(tar, m))
                for m in tar.getmembers()}


@settings(max_examples=80, deadline=None)
@given(_layer, st.randoms(use_true_random=False), st.sampled_from([tarfile.PAX_FORMAT,
                                                                    tarfile.GNU_FORMAT]))
def test_fixed_point_and_order_independent(entries: dict[str, Any], rnd: Any, fmt: int) -> None:
    names = list(entries)
    shuffled = names[:]
    rnd.shuffle(shuffled)
    a = norm(make_tar(entries, names, fmt=fmt))
    b = norm(make_tar(entries, shuffled, fmt=fmt, noise=False))
    assert a == b  # order, owner names, atime/ctime and tar flavour do not matter
    assert norm(a) == a  # normalizing twice changes nothing
    got = members(a)
    for name, e in entries.items():
        mode, uid, gid, mtime, uname, data = got[name]
        assert (mode, uid, gid, data) == (e["mode"], e["uid"], e["gid"], e["data"])
        assert mtime == min(e["mtime"], EPOCH) and uname == ""
    assert list(got) == sorted(got)


@settings(max_examples=60, deadline=None)
@given(_layer, st.data())
def test_content_mode_and_owner_differences_survive(entries: dict[str, Any],
                                                    data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(entries)))
    what = data.draw(st.sampled_from(["data", "mode", "uid"]))
    changed = {k: dict(v) for k, v in entries.items()}
    if what == "data":
        changed[name]["data"] = entries[name]["data"] + b"!"
    elif what == "mode":
        changed[name]["mode"] = entries[name]["mode"] ^ 0o001
    else:
        changed[name]["uid"] = entries[name]["uid"] + 1
    assert norm(make_tar(entries, list(entries))) != norm(make_tar(changed, list(changed)))


def test_mtimes_before_the_epoch_are_kept_and_later_ones_clamped() -> None:
    e = {"data": b"x", "mode": 0o644, "uid": 0, "gid": 0, "uname": "root", "atime": 5}
    tar = make_tar({"old": {**e, "mtime": 100}, "new": {**e, "mtime": EPOCH + 999}},
                   ["old", "new"])
    stats = LayerStats(0)
    out = io.BytesIO()
    normalize_tar(io.BytesIO(tar), out, EPOCH, stats)
    got = members(out.getvalue())
    assert got["old"][3] == 100 and got["new"][3] == EPOCH
    assert stats.mtimes_clamped == 1 and stats.owner_names_cleared == 2
    assert stats.pax_dropped == 4 and stats.reordered


def test_hard_link_follows_its_target() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        target = tarfile.TarInfo("z/target")
        target.size = 3
        tar.addfile(target, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("a/link")
        link.type, link.linkname = tarfile.LNKTYPE, "z/target"
        tar.addfile(link)
    out = norm(buf.getvalue())
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert [m.name for m in tar.getmembers()] == ["z/target", "a/link"]
