"""`gen lock --check` (offline): missing, stale and left-over lock entries are all reported."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.lock.lock import stale_locks
from generator.lock.lockfiles import (
    AptLock,
    AptPackage,
    BaseLock,
    ImagePin,
    PythonPin,
    base_lock_path,
    format_apt_lock,
    format_base_lock,
    format_image_lock,
    format_python_lock,
    parse_apt_lock,
    parse_base_lock,
    parse_image_lock,
    parse_python_lock,
)
from generator.spec.project import load_project
from tests.helpers import demo_project


def _edit_spec(project: Path, task: str, **env: object) -> None:
    f = project / "tasks" / task / "task.spec.yaml"
    spec = yaml.safe_load(f.read_text())
    spec.setdefault("environment", {}).update(env)
    f.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_fresh_locks_pass(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    assert stale_locks(load_project(project)) == []
    assert main(["lock", "--check", "--project", str(project)]) == 0


def test_changed_apt_list_is_stale(tmp_path: Path, capsys: object) -> None:
    project = demo_project(tmp_path / "p")
    _edit_spec(project, "hello", apt=["python3", "python3-pytest", "jq"])
    problems = stale_locks(load_project(project))
    assert problems == ["lockfiles/tasks/hello/apt.lock: stale (the spec or the base image "
                        "changed)"]
    assert main(["lock", "--check", "--project", str(project)]) == 1


def test_missing_python_lock_and_leftovers(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    _edit_spec(project, "hello", python=["six==1.16.0"])
    (project / "lockfiles/tasks/ghost").mkdir(parents=True)
    (project / "lockfiles/tasks/ghost/apt.lock").write_text("x")
    problems = stale_locks(load_project(project))
    assert "lockfiles/tasks/hello/requirements.txt: missing" in problems
    assert "lockfiles/tasks/ghost/: left over (no such task)" in problems


def test_unpinned_platform_is_reported(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["platforms"] = ["linux/amd64", "linux/arm64"]
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    problems = stale_locks(load_project(project))
    assert any("(linux/arm64) is not pinned" in p for p in problems)


def test_changed_source_commit_is_stale(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    f = project / "tasks/calc-add/task.spec.yaml"
    spec = yaml.safe_load(f.read_text())
    spec["base_commit"] = "b" * 40
    f.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert stale_locks(load_project(project)) == [
        "lockfiles/tasks/calc-add/source.lock: stale (the spec changed)"]


_name = st.from_regex(r"[a-z0-9][a-z0-9+.-]{0,20}", fullmatch=True)
_ver = st.from_regex(r"[0-9][0-9a-z.+~:-]{0,15}", fullmatch=True)
_hex = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_name, _ver, st.sampled_from(["amd64", "all"]), _hex,
                          st.integers(0, 10**9)), min_size=0, max_size=8, unique_by=lambda t: t[0]))
def test_apt_lock_round_trip(rows: list[tuple[str, str, str, str, int]]) -> None:
    pkgs = tuple(AptPackage(n, v, a, h, s, f"{n}_{v}_{a}.deb",
                            (f"http://deb.debian.org/debian/pool/main/{n}_{v}_{a}.deb",))
                 for n, v, a, h, s in rows)
    lock = AptLock("sha256:" + "0" * 64, ("b", "a"), pkgs, "r@sha256:" + "1" * 64)
    text = format_apt_lock(lock)
    back = parse_apt_lock(text, "apt.lock")
    assert sorted(back.packages, key=lambda p: p.name) == sorted(pkgs, key=lambda p: p.name)
    assert format_apt_lock(back) == text  # the writer is a fixed point: stable bytes


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,15}", fullmatch=True),
                          st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}", fullmatch=True),
                          st.lists(_hex, min_size=1, max_size=4, unique=True)),
                min_size=1, max_size=6, unique_by=lambda t: t[0].lower()))
def test_python_lock_round_trip(rows: list[tuple[str, str, list[str]]]) -> None:
    pins = [PythonPin(n, v, tuple(f"sha256:{h}" for h in hs)) for n, v, hs in rows]
    text = format_python_lock("sha256:" + "2" * 64, [n for n, _, _ in rows], pins)
    back = parse_python_lock(text, "requirements.txt")
    assert {(p.name, p.version, tuple(sorted(p.hashes))) for p in back.pins} == \
        {(p.name, p.version, tuple(sorted(p.hashes))) for p in pins}
    assert format_python_lock(back.input, back.requested, back.pins) == text


# --------------------------------------------------------------------------------------
# Declared bases: lockfiles/bases/<name>.lock and images.lock's 5th column
# --------------------------------------------------------------------------------------


def _base_pkgs(rows: list[tuple[str, str, str, str, int]], host: str) -> tuple[AptPackage, ...]:
    return tuple(sorted((AptPackage(n, v, a, h, s, f"{n}_{v}_{a}.deb",
                                    (f"{host}/debian/pool/main/{n}_{v}_{a}.deb",))
                         for n, v, a, h, s in rows), key=lambda p: (p.name, p.arch)))


def _base_lock(pkgs: tuple[AptPackage, ...], input_: str = "sha256:" + "2" * 64) -> BaseLock:
    return BaseLock(input=input_, ref="127.0.0.1:5000/gen/debian:bookworm", suite="bookworm",
                    variant="minbase", snapshot="20261206T031335Z",
                    releases=("bookworm=2026-07-11T10:16:37Z",),
                    sources=("deb http://deb.debian.org/debian bookworm main",
                             "deb http://deb.debian.org/debian-security bookworm-security main"),
                    packages=pkgs)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_name, _ver, st.sampled_from(["amd64", "all"]), _hex,
                          st.integers(0, 10**9)), min_size=1, max_size=8,
                unique_by=lambda t: t[0]))
def test_base_lock_round_trip_and_closure(rows: list[tuple[str, str, str, str, int]]) -> None:
    lock = _base_lock(_base_pkgs(rows, "http://deb.debian.org"))
    text = format_base_lock(lock)
    back = parse_base_lock(text, "lockfiles/bases/x.lock")
    assert back == lock
    assert format_base_lock(back) == text
    # the closure (what the rootfs depends on) ignores where the files come from ...
    moved = _base_lock(_base_pkgs(rows, "http://127.0.0.1:9"))
    assert moved.closure() == lock.closure()
    # ... but not a package's bytes
    n, v, a, h, s = rows[0]
    other = _base_lock(_base_pkgs([(n, v, a, ("f" if h[0] != "f" else "e") + h[1:], s),
                                   *rows[1:]], "http://deb.debian.org"))
    assert other.closure() != lock.closure()


def test_base_lock_rejects_missing_headers() -> None:
    import pytest

    from generator.core.errors import LockError

    text = format_base_lock(_base_lock(_base_pkgs([("a", "1", "all", "0" * 64, 1)], "http://x")))
    for header in ("input", "snapshot", "sources"):
        broken = "\n".join(ln for ln in text.splitlines() if not ln.startswith(f"# {header}:"))
        with pytest.raises(LockError, match=header):
            parse_base_lock(broken, "lockfiles/bases/x.lock")


def test_image_lock_fifth_column() -> None:
    import pytest

    from generator.core.errors import LockError

    pin = ImagePin("r/x:t", "linux/amd64", "sha256:" + "1" * 64, "sha256:" + "2" * 64, "3" * 64)
    plain = ImagePin("r/y:t", "linux/amd64", "sha256:" + "1" * 64, "sha256:" + "2" * 64)
    back = parse_image_lock(format_image_lock([pin, plain]))
    assert set(back.pins) == {pin, plain}
    with pytest.raises(LockError, match="base lock"):
        parse_image_lock(format_image_lock([pin]).replace("3" * 64, "nothex"))


def _declare_base(project: Path, **decl: object) -> tuple[Path, str]:
    """Declare the demo's base in gen.yaml, write a base lock for it and pin it to that lock."""
    import hashlib

    from generator.lock.baselock import declared_input
    from generator.spec.config import load_dataset_config

    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    ref = cfg["defaults"]["base_image"]
    cfg["bases"] = {ref: {"suite": "bookworm", **decl}}
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    config = load_dataset_config(project)
    lock = _base_lock(_base_pkgs([("a", "1", "all", "0" * 64, 1)], "http://x"),
                      declared_input(config.bases[0], config.platforms[0]))
    path = base_lock_path(project / "lockfiles", ref)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = format_base_lock(lock).encode()
    path.write_bytes(data)
    images = project / "lockfiles" / "images.lock"
    old = parse_image_lock(images.read_text())
    pins = [ImagePin(p.ref, p.platform, p.index_digest, p.manifest_digest,
                     hashlib.sha256(data).hexdigest() if p.ref == ref else "")
            for p in old.pins]
    images.write_text(format_image_lock(pins))
    return path, ref


def test_declared_base_fresh_stale_and_mispinned(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    path, ref = _declare_base(project)
    assert stale_locks(load_project(project)) == []
    rel = f"lockfiles/bases/{path.name}"
    # the declaration changes: the base lock is stale
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["bases"][ref]["include"] = ["ca-certificates"]
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert stale_locks(load_project(project)) == [
        f"{rel}: stale (gen.yaml's declaration of {ref} changed)"]
    # the lock changes under the pin: the pin was built from another base lock
    _declare_base(project)
    path.write_text(path.read_text().replace("20261206T031335Z", "20261207T000000Z"))
    problems = stale_locks(load_project(project))
    assert len(problems) == 1 and "built from another base lock" in problems[0]
    assert main(["lock", "--check", "--project", str(project)]) == 1
    # missing, and left over
    path.rename(path.with_name("old.lock"))
    problems = stale_locks(load_project(project))
    assert f"{rel}: missing" in problems
    assert "lockfiles/bases/old.lock: left over (no such base in gen.yaml)" in problems


def test_gen_lock_removes_a_left_over_base_lock(tmp_path: Path) -> None:
    """A base lock whose bases: entry is gone is removed by gen lock (as a removed task's
    locks are), and lock --check is clean again; the declared base's lock stays."""
    from generator.lock.lock import lock_project

    project = demo_project(tmp_path / "p")
    path, _ref = _declare_base(project)
    left = path.with_name("gen-debian-gone.lock")
    left.write_bytes(path.read_bytes())
    assert stale_locks(load_project(project)) == [
        f"lockfiles/bases/{left.name}: left over (no such base in gen.yaml)"]
    result = lock_project(project)  # everything else is fresh: nothing is resolved
    assert result.removed == [f"lockfiles/bases/{left.name}"]
    assert not left.exists() and path.exists()
    assert stale_locks(load_project(project)) == []
