"""`gen lock --check` (offline): missing, stale and left-over lock entries are all reported."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.lock import stale_locks
from generator.lockfiles import (
    AptLock,
    AptPackage,
    PythonPin,
    format_apt_lock,
    format_python_lock,
    parse_apt_lock,
    parse_python_lock,
)
from generator.spec import load_project
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
