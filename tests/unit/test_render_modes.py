"""gen render's output has fixed modes whatever the umask: every directory 0755, every file
0644 or 0755 (a umask of 077 used to leave the directories 0700)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.core.fsutil import atomic_write, make_dirs
from generator.render.pipeline import render

REPO = Path(__file__).resolve().parents[2]


def copy_example(dst: Path) -> Path:
    """The inputs of this repository's example project (no dataset/, no .gen/)."""
    dst.mkdir(parents=True)
    shutil.copy2(REPO / "gen.yaml", dst / "gen.yaml")
    for sub in ("tasks", "lockfiles", "templates"):
        if (REPO / sub).is_dir():
            shutil.copytree(REPO / sub, dst / sub)
    return dst


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(directory -> mode, file -> mode) of everything under root, root included."""
    dirs = {".": stat.S_IMODE(root.stat().st_mode)}
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath) / name
            dirs[p.relative_to(root).as_posix()] = stat.S_IMODE(p.lstat().st_mode)
        for name in filenames:
            p = Path(dirpath) / name
            files[p.relative_to(root).as_posix()] = stat.S_IMODE(p.lstat().st_mode)
    return dirs, files


def assert_fixed_modes(root: Path) -> None:
    dirs, files = modes(root)
    assert len(dirs) > 3 and files
    assert {d: m for d, m in dirs.items() if m != 0o755} == {}
    assert {f: m for f, m in files.items() if m not in (0o644, 0o755)} == {}


@pytest.mark.parametrize("mask", [0o077, 0o027, 0o002])
def test_first_render_has_fixed_modes_under_any_umask(tmp_path: Path, mask: int) -> None:
    project = copy_example(tmp_path / "p")
    with umask(mask):
        render(project, jobs=1)
    assert_fixed_modes(project / "dataset")
    # the bytes and modes are those of the committed dataset, whatever the umask
    with umask(0o022):
        render(project, tmp_path / "ref", jobs=1)
    assert modes(project / "dataset") == modes(tmp_path / "ref")
    for rel in modes(tmp_path / "ref")[1]:
        assert (project / "dataset" / rel).read_bytes() == (tmp_path / "ref" / rel).read_bytes()


def test_new_task_dir_and_new_subdir_have_fixed_modes(tmp_path: Path) -> None:
    """The other two ways render makes a directory: a task dir staged inside an existing
    output dir, and a new subdirectory of an existing task (its file written in place)."""
    project = copy_example(tmp_path / "p")
    render(project, jobs=1)
    out = project / "dataset"
    tasks = sorted(p.name for p in out.iterdir())
    shutil.rmtree(out / tasks[0])
    with_tests = next(t for t in tasks[1:] if (project / "tasks" / t / "tests").is_dir())
    extra = project / "tasks" / with_tests / "tests" / "more" / "deeper"
    extra.mkdir(parents=True)
    (extra / "test_extra.py").write_text("def test_extra() -> None:\n    pass\n")
    with umask(0o077):
        result = render(project, jobs=1)
    assert f"{with_tests}/tests/more/deeper/test_extra.py" in result.written
    assert any(rel.startswith(f"{tasks[0]}/") for rel in result.written)
    assert (out / with_tests / "tests" / "more" / "deeper").is_dir()
    assert_fixed_modes(out)


def test_make_dirs_sets_exact_modes_and_leaves_existing_dirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(mode=0o700)
    with umask(0o077):
        make_dirs(tmp_path / "a" / "b" / "c")
        make_dirs(tmp_path / "a" / "b" / "c")  # exists: nothing to do
        atomic_write(tmp_path / "x" / "y" / "f", b"data", 0o644, dir_mode=0o755)
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "a" / "b" / "c").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "x").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "x" / "y").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "x" / "y" / "f").stat().st_mode) == 0o644
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError):
        make_dirs(tmp_path / "file" / "sub")
