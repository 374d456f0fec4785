"""Every kind of bad input: exit 2 and one line naming the file, the line, the field and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.cli import build_parser, main
from generator.core.errors import SpecError
from generator.spec.model import SweTask
from generator.spec.project import load_project
from tests.helpers import SWE_FILES, TERMINAL_FILES, build_project, swe_spec, terminal_spec


def _run(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["render", "--project", str(project)])
    err = capsys.readouterr().err.strip()
    return code, err


def _project(tmp_path: Path, spec: dict[str, Any], files: dict[str, Any] | None = None,
             task_id: str = "t1") -> Path:
    return build_project(tmp_path / "p", {task_id: (spec, files or TERMINAL_FILES)}, locks=False)


BAD_TERMINAL = [
    # (description, spec mutation, expected field, expected words in message, fix words)
    ("unknown key", {"instructoin": "x"}, "instructoin", "unknown key",
     "did you mean 'instruction'"),
    ("wrong type", {"tags": "python"}, "tags", "must be a list", "YAML list"),
    ("wrong type in list", {"tags": ["a", 3]}, "tags[1]", "must be a string", "quote"),
    ("bad difficulty", {"difficulty": "trivial"}, "difficulty", "not one of", "easy, medium, hard"),
    ("bad timeout", {"timeouts": {"agent_sec": -5}}, "timeouts.agent_sec", "greater than",
     "positive"),
    ("timeout wrong type", {"timeouts": {"test_sec": "soon"}}, "timeouts.test_sec",
     "must be a number", "number"),
    ("bad apt name", {"environment": {"apt": ["Python3!"]}}, "environment.apt[0]",
     "invalid Debian package name", "versions come from gen lock"),
    # `$` in a pattern would also accept a trailing newline, which would end a Dockerfile line
    ("apt name with a newline", {"environment": {"apt": ["tmux\n"]}}, "environment.apt[0]",
     "invalid Debian package name", "versions come from gen lock"),
    ("env name with a newline", {"environment": {"env": {"A\n": "x"}}}, "environment.env.A\\n",
     "invalid name", "names matching"),
    ("tag with a newline", {"tags": ["x\n"]}, "tags[0]", "invalid tag", "single words"),
    ("bad requirement", {"environment": {"python": ["requests @@ 2"]}}, "environment.python[0]",
     "invalid Python requirement", "requests==2.32.3"),
    ("bad env name", {"environment": {"env": {"1BAD": "x"}}}, "environment.env.1BAD",
     "invalid name", "names matching"),
    ("relative workdir", {"environment": {"workdir": "app"}}, "environment.workdir",
     "not an absolute path", "absolute path"),
    ("missing file src", {"files": [{"src": "nope.py", "dest": "/app/nope.py"}]},
     "files[0].src", "does not exist", "create nope.py"),
    ("escaping src", {"files": [{"src": "../x", "dest": "/x"}]}, "files[0].src",
     "relative path inside the task directory", "without '..'"),
    ("relative dest", {"files": [{"src": "app/hello.py", "dest": "app/hello.py"}]},
     "files[0].dest", "not an absolute path", "absolute path"),
    ("bad mode", {"files": [{"src": "app/hello.py", "dest": "/a", "mode": "rwx"}]},
     "files[0].mode", "octal", "0755"),
    ("bad kind", {"kind": "webapp"}, "kind", "not one of", "kind: terminal"),
    ("duplicate tag", {"tags": ["a", "a"]}, "tags[1]", "duplicate", "remove the second"),
    ("empty instruction", {"instruction": "  "}, "instruction", "must not be empty",
     "the text the agent sees"),
]


@pytest.mark.parametrize(("desc", "mutation", "field", "words", "fix"), BAD_TERMINAL,
                         ids=[b[0] for b in BAD_TERMINAL])
def test_bad_terminal_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str], desc: str,
                           mutation: dict[str, Any], field: str, words: str, fix: str) -> None:
    spec = terminal_spec(**mutation)
    project = _project(tmp_path, spec)
    code, err = _run(project, capsys)
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "tasks/t1/task.spec.yaml:" in err
    assert f"field '{field}'" in err
    assert words in err
    assert "(fix:" in err and fix in err


def test_error_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    spec_file = project / "tasks/t1/task.spec.yaml"
    spec_file.write_text("kind: terminal\ninstruction: do it\ndifficulty: easy\n"
                         "colour: blue\nfiles: []\n")
    code, err = _run(project, capsys)
    assert code == 2
    assert "tasks/t1/task.spec.yaml:4: field 'colour': unknown key" in err


@pytest.mark.parametrize("missing", ["instruction", "difficulty", "kind"])
def test_missing_required(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          missing: str) -> None:
    spec = terminal_spec()
    del spec[missing]
    code, err = _run(_project(tmp_path, spec), capsys)
    assert code == 2
    assert f"missing required field '{missing}'" in err
    assert "task.spec.yaml" in err and "(fix:" in err


@pytest.mark.parametrize("bad_id", ["Fix-Parser", "has space", "-leading", "UPPER", "ünï"])
def test_bad_task_id(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_id: str) -> None:
    code, err = _run(_project(tmp_path, terminal_spec(), task_id=bad_id), capsys)
    assert code == 2
    assert "bad task id" in err and "lowercase" in err
    assert f"tasks/{bad_id}" in err and "rename the directory" in err


def test_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    (project / "tasks/t1/task.spec.yaml").write_text("kind: terminal\ninstruction: [oops\n")
    code, err = _run(project, capsys)
    assert code == 2
    assert "tasks/t1/task.spec.yaml:" in err and "invalid YAML" in err and "fix the YAML" in err


def test_spec_not_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    (project / "tasks/t1/task.spec.yaml").write_text("- just\n- a list\n")
    code, err = _run(project, capsys)
    assert code == 2 and "must be a mapping" in err


def test_dir_without_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    (project / "tasks/empty").mkdir()
    code, err = _run(project, capsys)
    assert code == 2 and "tasks/empty" in err and "task.spec.yaml" in err


def test_missing_tests_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {k: v for k, v in TERMINAL_FILES.items() if not k.startswith("tests/")}
    code, err = _run(_project(tmp_path, terminal_spec(), files), capsys)
    assert code == 2 and "field 'tests'" in err and "missing or empty" in err


BAD_SWE = [
    ("short commit", {"base_commit": "abc123"}, "base_commit", "does not match", "40-hex"),
    ("both sources", {"source": {"git": "a", "archive": "b"}}, "source", "exactly one",
     "source: {git"),
    ("bad repo", {"repo": "no-slash"}, "repo", "does not match", "owner/name"),
    ("version number", {"version": 1.0}, "version", "must be a string", "quote"),
    ("bad parser", {"log_parser": "parse_log_magic"}, "log_parser", "not one of",
     "parse_log_pytest"),
    ("overlap", {"PASS_TO_PASS": ["tests/test_calc.py::test_add"]}, "PASS_TO_PASS",
     "in both FAIL_TO_PASS and PASS_TO_PASS", "keep each test in one list"),
    ("missing patch", {"patch": "nope.patch"}, "patch", "does not exist", "fix 'patch'"),
    ("test id with space", {"FAIL_TO_PASS": ["t.py::test_x[a b]"]}, "FAIL_TO_PASS[0]",
     "invalid test name", "without spaces"),
]


@pytest.mark.parametrize(("desc", "mutation", "field", "words", "fix"), BAD_SWE,
                         ids=[b[0] for b in BAD_SWE])
def test_bad_swe_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str], desc: str,
                      mutation: dict[str, Any], field: str, words: str, fix: str) -> None:
    project = _project(tmp_path, swe_spec(**mutation), SWE_FILES)
    code, err = _run(project, capsys)
    assert code == 2, err
    assert "tasks/t1/task.spec.yaml:" in err and f"field '{field}'" in err
    assert words in err and fix in err


def test_patch_not_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = dict(SWE_FILES, **{"gold.patch": "just some text\n"})
    code, err = _run(_project(tmp_path, swe_spec(), files), capsys)
    assert code == 2 and "not a git diff" in err and "field 'patch'" in err


def test_bad_gen_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["platfroms"] = ["linux/amd64"]
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    code, err = _run(project, capsys)
    assert code == 2 and err.startswith("gen render: error: gen.yaml:")
    assert "unknown key 'platfroms'" in err and "did you mean 'platforms'" in err


def test_gen_yaml_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.image import engines
    from generator.spec.config import load_dataset_config
    from generator.spec.model import BUILD_ENGINES

    assert ("auto", *engines.ENGINES) == BUILD_ENGINES
    project = _project(tmp_path, terminal_spec())
    assert load_dataset_config(project).engine == "auto"
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["engine"] = "podman"
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    code, err = _run(project, capsys)
    assert code == 2 and err.startswith("gen render: error: gen.yaml:")
    assert "field 'engine'" in err and "'podman' is not one of auto, buildah, docker, buildx" in err
    assert "digests depend on the engine" in err
    # gen build and verify-reproducible use it when no --engine is given
    cfg["engine"] = "buildx"
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    assert load_dataset_config(project).engine == "buildx"
    monkeypatch.setattr("generator.image.engines.base.DOCKER_CLI", str(tmp_path / "no-docker"))
    for cmd in (["build"], ["verify-reproducible"]):
        assert main([*cmd, "--project", str(project)]) == 1
        assert "engine buildx is not usable" in capsys.readouterr().err


def test_declared_base_with_two_platforms(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A declared base is built natively: a two-platform dataset gets one line, not a pin
    for the first platform only."""
    project = _project(tmp_path, terminal_spec())
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    cfg["bases"] = {cfg["defaults"]["base_image"]: {"suite": "bookworm"}}
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    from generator.spec.config import load_dataset_config

    assert load_dataset_config(project).bases[0].suite == "bookworm"
    cfg["platforms"] = ["linux/amd64", "linux/arm64"]
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    code, err = _run(project, capsys)
    assert code == 2 and err.startswith("gen render: error: gen.yaml:")
    assert "field 'bases'" in err and "linux/amd64, linux/arm64" in err and "fix:" in err
    assert len(err.strip().splitlines()) == 1


def test_gen_yaml_missing_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    cfg = yaml.safe_load((project / "gen.yaml").read_text())
    del cfg["source_date_epoch"]
    (project / "gen.yaml").write_text(yaml.safe_dump(cfg))
    code, err = _run(project, capsys)
    assert code == 2 and "source_date_epoch" in err and "unix seconds" in err


def test_valid_specs_load(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p", {
        "a": (terminal_spec(), TERMINAL_FILES), "b": (swe_spec(), SWE_FILES)}, locks=False)
    loaded = load_project(project)
    assert [t.id for t in loaded.tasks] == ["a", "b"]
    a, b = loaded.tasks
    assert a.environment.apt == ("python3", "python3-pytest", "tmux")  # defaults merged, sorted
    assert b.environment.workdir == "/testbed"
    assert isinstance(b, SweTask) and b.fail_to_pass == ("tests/test_calc.py::test_add",)


def test_spec_error_is_typed(tmp_path: Path) -> None:
    project = _project(tmp_path, terminal_spec(difficulty="nope"))
    with pytest.raises(SpecError) as info:
        load_project(project)
    text = (project / "tasks/t1/task.spec.yaml").read_text().splitlines()
    expected = next(i for i, line in enumerate(text, 1) if line.startswith("difficulty:"))
    assert info.value.field == "difficulty" and info.value.line == expected


def test_control_characters_in_a_key_stay_on_one_line(tmp_path: Path) -> None:
    """Found by the fuzz test: an unknown key holding a newline broke the one-line error."""
    from generator.core.errors import SpecError
    from generator.spec.model import Defaults
    from generator.spec.project import load_task

    task_dir = tmp_path / "tasks" / "t1"
    task_dir.mkdir(parents=True)
    (task_dir / "task.spec.yaml").write_text(
        'kind: terminal\ninstruction: x\ndifficulty: easy\nauthor: {"\\n": 1}\n')
    try:
        load_task(task_dir, Defaults(base_image="reg/img:1"), tmp_path)
    except SpecError as exc:
        line = exc.one_line()
        assert "\n" not in line and "unknown key '\\n'" in line
    else:
        raise AssertionError("the unknown key was accepted")


def test_project_without_tasks_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path, terminal_spec())
    shutil.rmtree(project / "tasks")
    code, err = _run(project, capsys)
    assert code == 2
    assert "tasks/" in err and "no tasks/ directory" in err
    assert "create tasks/<id>/task.spec.yaml" in err
    # the hint names a command gen has
    assert "`gen init --project DIR`" in err
    assert "\n    init " in build_parser().format_help()
