"""gen init: a dataset project that loads, renders once locked, and never overwrites."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from generator.cli import main
from generator.core.errors import UsageError
from generator.lint.tb import lint_tb_task
from generator.render.context import RenderedFile
from generator.render.pipeline import render
from generator.spec.project import load_project
from generator.spec.scaffold import init_project
from tests.helpers import write_locks

EXPECTED = {".gitignore", "gen.yaml", "tasks/hello-world/solution.sh",
            "tasks/hello-world/task.spec.yaml", "tasks/hello-world/tests/test_outputs.py",
            "templates/README.md"}


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in root.rglob("*") if p.is_file()}


def test_init_writes_a_project_that_loads_and_renders(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "My Bench"
    assert main(["init", "--project", str(project), "--source-date-epoch", "1700000000"]) == 0
    out = capsys.readouterr().out
    assert "created dataset project 'my-bench'" in out and "gen lock" in out
    files = _files(project)
    assert set(files) == EXPECTED
    for rel, (_data, mode) in files.items():
        assert mode == (0o755 if rel.endswith(".sh") else 0o644), rel
    assert not [p for p in project.iterdir() if p.name.startswith(".gen-init")]
    config = yaml.safe_load(files["gen.yaml"][0])
    assert config["name"] == "my-bench" and config["source_date_epoch"] == 1700000000
    assert config["registry"] == "127.0.0.1:5000/my-bench"
    loaded = load_project(project)
    assert [t.id for t in loaded.tasks] == ["hello-world"]
    # once locked (synthetic pins here; `gen lock` in the integration tests), it renders, and
    # the task is one Terminal-Bench accepts
    spec = yaml.safe_load(files["tasks/hello-world/task.spec.yaml"][0])
    write_locks(project, {"hello-world": spec}, config)
    result = render(project)
    assert "hello-world/task.yaml" in result.written
    task_dir = project / "dataset" / "hello-world"
    rendered = {p.relative_to(task_dir).as_posix():
                RenderedFile(p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
                for p in task_dir.rglob("*") if p.is_file()}
    lint_tb_task("hello-world", rendered)
    dockerfile = rendered["Dockerfile"].data.decode()
    assert "test_outputs" not in dockerfile and "solution" not in dockerfile
    assert main(["render", "--check", "--project", str(project)]) == 0


def test_init_is_deterministic(tmp_path: Path) -> None:
    a = init_project(tmp_path / "a" / "ds", name="ds", source_date_epoch=1)
    b = init_project(tmp_path / "b" / "ds", name="ds", source_date_epoch=1)
    assert a.created == b.created == sorted(EXPECTED)
    assert _files(tmp_path / "a" / "ds") == _files(tmp_path / "b" / "ds")


def test_default_epoch_is_today_at_midnight_utc(tmp_path: Path) -> None:
    result = init_project(tmp_path / "ds")
    assert result.source_date_epoch % 86400 == 0
    assert 0 <= os.stat(tmp_path / "ds" / "gen.yaml").st_mtime - result.source_date_epoch \
        < 2 * 86400


@pytest.mark.parametrize("existing", ["gen.yaml", "tasks", "templates", "lockfiles", "dataset"])
def test_init_refuses_a_project_and_writes_nothing(tmp_path: Path, existing: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "ds"
    project.mkdir()
    if "." in existing:
        (project / existing).write_text("name: mine\n")
    else:
        (project / existing).mkdir()
    before = sorted(p.name for p in project.iterdir())
    assert main(["init", "--project", str(project)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{project / existing} already exists" in err and "never overwrites" in err
    assert sorted(p.name for p in project.iterdir()) == before
    if existing == "gen.yaml":
        assert (project / "gen.yaml").read_text() == "name: mine\n"


def test_init_keeps_an_existing_gitignore(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "ds"
    project.mkdir()
    (project / ".gitignore").write_text("*.log\n")
    assert main(["init", "--project", str(project), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "init" and report["exit_code"] == 0
    assert report["kept"] == [".gitignore"] and ".gitignore" not in report["created"]
    assert report["name"] == "ds" and "tasks/hello-world/task.spec.yaml" in report["created"]
    assert (project / ".gitignore").read_text() == "*.log\n"


@pytest.mark.parametrize(("args", "words"), [
    (["--name", "Bad Name"], "bad dataset name 'Bad Name'"),
    (["--source-date-epoch", "-5"], "bad --source-date-epoch -5"),
])
def test_init_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            args: list[str], words: str) -> None:
    assert main(["init", "--project", str(tmp_path / "ds"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "fix:" in err
    assert not (tmp_path / "ds" / "gen.yaml").exists()


def test_init_needs_a_name_when_the_directory_gives_none(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot make a dataset name") as exc:
        init_project(tmp_path / "___")
    assert "--name" in (exc.value.hint or "")
    assert init_project(tmp_path / "___", name="ok").name == "ok"


@pytest.mark.parametrize("exists", [True, False])
def test_a_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         exists: bool) -> None:
    project = tmp_path / "ds"
    if exists:
        project.mkdir()
        (project / "notes.txt").write_text("mine\n")
    real_rename = os.rename
    calls: list[str] = []

    def rename(src: str | Path, dst: str | Path) -> None:
        calls.append(str(dst))
        if len(calls) == 2:
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr("generator.spec.scaffold.os.rename", rename)
    with pytest.raises(OSError, match="disk full"):
        init_project(project, name="ds")
    assert calls[0].endswith("gen.yaml")
    # what was moved before the failure is taken back: the directory is as it was
    if exists:
        assert sorted(p.name for p in project.iterdir()) == ["notes.txt"]
    else:
        assert not project.exists()
