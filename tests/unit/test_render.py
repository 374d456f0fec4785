"""gen render: pure, byte-deterministic, atomic, and honest about what changed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.render.pipeline import render
from generator.render.templates import heredoc_delimiter
from tests.helpers import (
    SWE_FILES,
    TERMINAL_FILES,
    build_project,
    demo_project,
    swe_spec,
    terminal_spec,
    write_locks,
)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def test_render_outputs(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    result = render(project)
    files = tree(project / "dataset")
    assert set(result.written) == set(files)
    assert {f for f in files if f.startswith("hello/")} == {
        "hello/Dockerfile", "hello/README.md", "hello/docker-compose.yaml", "hello/task.yaml",
        "hello/run-tests.sh", "hello/solution.sh", "hello/files/app/hello.py",
        "hello/apt.sha256", "hello/tests/test_outputs.py"}
    assert {f for f in files if f.startswith("calc-add/")} >= {
        "calc-add/eval.sh", "calc-add/tests/test.patch", "calc-add/tests/tests.json"}
    for rel, (_data, mode) in files.items():
        assert mode == (0o755 if rel.endswith(".sh") else 0o644), rel
    for rel, (data, _mode) in files.items():
        text = data.decode()
        assert "\r" not in text
        assert str(tmp_path) not in text, f"absolute path leaked into {rel}"


def test_terminal_bench_shape(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    d = project / "dataset" / "hello"
    task = yaml.safe_load((d / "task.yaml").read_text())
    assert task["instruction"] == "Fix the script /app/hello.py so it prints 'hello'.\n"
    assert task["difficulty"] == "easy" and task["parser_name"] == "pytest"
    compose = yaml.safe_load((d / "docker-compose.yaml").read_text())
    client = compose["services"]["client"]
    assert client["container_name"] == "${T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME}"
    assert "TEST_DIR=${T_BENCH_TEST_DIR}" in client["environment"]
    assert "-rA" in (d / "run-tests.sh").read_text()
    dockerfile = (d / "Dockerfile").read_text()
    assert "tests" not in [line.split()[1].split("/")[0] for line in dockerfile.splitlines()
                           if line.startswith("COPY")]
    assert "solution" not in dockerfile and "# syntax" not in dockerfile
    assert "@sha256:" in dockerfile.splitlines()[2]
    apt = (d / "apt.sha256").read_text().splitlines()
    assert any(line.endswith("tmux_1.0-1_amd64.deb") for line in apt)


def test_swe_shape(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    d = project / "dataset" / "calc-add"
    eval_sh = (d / "eval.sh").read_text()
    config = _grading_input(eval_sh)
    assert "swe \"$GEN_TEST_DIR\"" in eval_sh  # the grader prints SWE-bench's markers itself
    assert config["test_patch"].startswith("diff --git a/tests/test_calc.py")
    assert config["pytest_args"] == ["-rA", "tests/test_calc.py"]
    assert config["test_files"] == ["tests/test_calc.py"] and config["workdir"] == "/testbed"
    sol = (d / "solution.sh").read_text()
    assert "return a + b" in sol and "test_calc" not in sol
    assert json.loads((d / "tests/tests.json").read_text())["FAIL_TO_PASS"] == [
        "tests/test_calc.py::test_add"]
    run_tests = (d / "run-tests.sh").read_text()
    # the test files, as SWE-bench runs them; the ids are names in the log, not selectors
    assert _grading_input(run_tests) == config


def _grading_input(script: str) -> dict[str, Any]:
    """The task's grading input of a sealed script: the single-quoted JSON after <<<."""
    m = re.search(r"<<<('(?:[^']|'\"'\"')*')\"\n\$GEN_RECORD\"$", script, re.M)
    assert m is not None, script[-600:]
    config: dict[str, Any] = json.loads(shlex.split(m.group(1))[0])
    return config


def test_terminal_tests_are_sealed(tmp_path: Path) -> None:
    """A plain pytest command is graded sealed: the test files by sha256, {TEST_DIR} for the
    private copy; any other command (a pipeline) is rendered as it is, not sealed."""
    project = demo_project(tmp_path / "p")
    render(project)
    script = (project / "dataset" / "hello" / "run-tests.sh").read_text()
    config = _grading_input(script)
    assert config["pytest_args"] == ["-rA", "-p", "no:cacheprovider", "{TEST_DIR}"]
    tests = project / "tasks" / "hello" / "tests"
    assert config["test_files"] == {
        p.relative_to(tests).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tests.rglob("*")) if p.is_file()}
    assert "GEN_RECORD=  # filled in from the built image" in script
    spec = project / "tasks" / "hello" / "task.spec.yaml"
    spec.write_text(spec.read_text() + "tests: {dir: tests, command: 'python3 -m pytest -rA "
                    "\"$TEST_DIR\" | tee /tmp/log'}\n")
    render(project)
    plain = (project / "dataset" / "hello" / "run-tests.sh").read_text()
    assert "--gen-sealed" not in plain and "Not sealed" in plain
    assert plain.rstrip().endswith("| tee /tmp/log")


def test_check_and_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = demo_project(tmp_path / "p")
    out = project / "dataset"
    assert main(["render", "--project", str(project), "--check"]) == 1
    assert "hello/task.yaml" in capsys.readouterr().out
    assert not out.exists()
    assert main(["render", "--project", str(project)]) == 0
    before = {p: os.stat(p) for p in out.rglob("*") if p.is_file()}
    # unchanged files are not rewritten (same inode and mtime), with and without the cache
    assert main(["render", "--project", str(project), "--no-cache"]) == 0
    assert main(["render", "--project", str(project)]) == 0
    after = {p: os.stat(p) for p in out.rglob("*") if p.is_file()}
    assert {p: (s.st_ino, s.st_mtime_ns) for p, s in before.items()} == \
        {p: (s.st_ino, s.st_mtime_ns) for p, s in after.items()}
    assert main(["render", "--project", str(project), "--check"]) == 0
    capsys.readouterr()
    # a hand edit is detected and listed, and --check writes nothing
    (out / "hello" / "task.yaml").write_text("instruction: hacked\n")
    assert main(["render", "--project", str(project), "--check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == ["hello/task.yaml"] and report["exit_code"] == 1
    assert (out / "hello" / "task.yaml").read_text() == "instruction: hacked\n"
    assert main(["render", "--project", str(project)]) == 0
    assert main(["render", "--project", str(project), "--check"]) == 0


def test_removed_task_is_pruned(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    shutil.rmtree(project / "tasks" / "hello")
    (project / "dataset" / "stray.txt").write_text("x")
    result = render(project, check=True)
    assert "hello/task.yaml" in result.removed and "stray.txt" in result.removed
    render(project)
    assert sorted(p.name for p in (project / "dataset").iterdir()) == ["calc-add"]


def test_error_leaves_previous_dataset_untouched(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    before = tree(project / "dataset")
    # change a good task (would rewrite files) and break another one (sorted after it)
    spec = terminal_spec(instruction="A new instruction.\n")
    (project / "tasks" / "hello" / "task.spec.yaml").write_text(yaml.safe_dump(spec))
    write_locks(project, {"hello": spec, "calc-add": swe_spec()})
    (project / "tasks" / "zz-broken").mkdir()
    (project / "tasks" / "zz-broken" / "task.spec.yaml").write_text("kind: terminal\n")
    assert main(["render", "--project", str(project)]) == 2
    assert "zz-broken" in capsys.readouterr().err
    assert tree(project / "dataset") == before


def test_stale_or_missing_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = demo_project(tmp_path / "p")
    spec_file = project / "tasks" / "hello" / "task.spec.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["environment"]["apt"].append("curl")
    spec_file.write_text(yaml.safe_dump(spec))
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "lockfiles/tasks/hello/apt.lock" in err and "stale" in err and "gen lock" in err
    (project / "lockfiles" / "tasks" / "hello" / "apt.lock").unlink()
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "are not locked" in err and "run `gen lock`" in err


@pytest.mark.parametrize(("lockfile", "old", "new", "words"), [
    ("apt.lock", "\t1.0-1\t", "\t\t", "no exact version"),
    ("apt.lock", "\tamd64\t", "\tamd64\tx\t", "tab-separated columns"),
    ("apt.lock", "\tamd64\t", "\tamd64\tnothex", "has no sha256"),
])
def test_malformed_apt_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str], lockfile: str,
                            old: str, new: str, words: str) -> None:
    project = demo_project(tmp_path / "p")
    path = project / "lockfiles" / "tasks" / "hello" / lockfile
    path.write_text(path.read_text().replace(old, new, 1))
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert words in err and f"lockfiles/tasks/hello/{lockfile}:" in err and "gen lock" in err


def test_python_requirements_need_hashes(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = terminal_spec(environment={"apt": ["python3", "python3-pip"],
                                      "python": ["requests==2.32.3"]})
    project = build_project(tmp_path / "p", {"t1": (spec, TERMINAL_FILES)})
    assert main(["render", "--project", str(project)]) == 0
    dockerfile = (project / "dataset/t1/Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "--no-index" in dockerfile
    req = project / "lockfiles/tasks/t1/requirements.txt"
    req.write_text("\n".join(line for line in req.read_text().splitlines()
                             if "--hash" not in line).replace(" \\", "") + "\n")
    assert main(["render", "--project", str(project)]) == 2
    assert "has no --hash" in capsys.readouterr().err


def test_source_lock_needs_sha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = demo_project(tmp_path / "p")
    path = project / "lockfiles/tasks/calc-add/source.lock"
    text = path.read_text()
    path.write_text("\n".join(line if not line.startswith("sha256") else "sha256\t"
                              for line in text.splitlines()) + "\n")
    assert main(["render", "--project", str(project)]) == 2
    assert "source has no sha256" in capsys.readouterr().err


def test_gold_patch_must_not_touch_tests(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    files = dict(SWE_FILES)
    files["gold.patch"] = SWE_FILES["gold.patch"] + SWE_FILES["test.patch"]
    project = build_project(tmp_path / "p", {"s": (swe_spec(), files)})
    assert main(["render", "--project", str(project)]) == 2
    assert "both edit 'tests/test_calc.py'" in capsys.readouterr().err


def test_task_template_override(tmp_path: Path) -> None:
    files = dict(TERMINAL_FILES, **{"templates/README.md.j2": "# {{ task.id }} (custom)\n"})
    project = build_project(tmp_path / "p", {"t1": (terminal_spec(), files),
                                             "t2": (terminal_spec(), TERMINAL_FILES)})
    (project / "templates").mkdir()
    (project / "templates" / "task.yaml.j2").write_text(
        "instruction: {{ task.instruction | yaml_block }}\ndifficulty: {{ task.difficulty }}\n")
    render(project)
    assert (project / "dataset/t1/README.md").read_text() == "# t1 (custom)\n"
    assert (project / "dataset/t2/README.md").read_text().startswith("<!-- Generated by gen")
    assert (project / "dataset/t2/task.yaml").read_text().startswith("instruction:")
    # the override dir is a template source, not an output file
    assert not (project / "dataset/t1/templates").exists()


def test_undefined_template_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = build_project(tmp_path / "p", {"t1": (terminal_spec(), TERMINAL_FILES)})
    (project / "templates").mkdir()
    (project / "templates" / "README.md.j2").write_text("{{ task.no_such_field }}\n")
    assert main(["render", "--project", str(project)]) == 2
    err = capsys.readouterr().err
    assert "README.md.j2" in err and "no_such_field" in err


text_st = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                  min_size=1, max_size=200)


@given(text_st)
def test_heredoc_delimiter_not_in_text(text: str) -> None:
    assert heredoc_delimiter(text) not in text


spec_st = st.fixed_dictionaries({
    "instruction": st.text(st.characters(codec="utf-8", blacklist_categories=["Cs", "Cc"]),
                           min_size=1, max_size=300).filter(lambda s: s.strip()),
    "difficulty": st.sampled_from(["easy", "medium", "hard"]),
    "tags": st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True), unique=True,
                     max_size=5),
    "apt": st.lists(st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True), unique=True,
                    max_size=6),
    "env": st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True),
                           st.text(st.characters(codec="ascii", blacklist_categories=["Cc"]),
                                   max_size=20), max_size=3),
    "agent_sec": st.integers(1, 10_000),
})


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec_st)
def test_render_is_deterministic(tmp_path_factory: pytest.TempPathFactory,
                                 values: dict[str, Any]) -> None:
    """Two renders of the same inputs, in two different places, give identical bytes."""
    spec = terminal_spec(instruction=values["instruction"], difficulty=values["difficulty"],
                         tags=values["tags"], timeouts={"agent_sec": values["agent_sec"]},
                         environment={"apt": values["apt"], "env": values["env"]})
    trees = []
    for _ in range(2):
        root = tmp_path_factory.mktemp("det")
        project = build_project(root / "project", {"t1": (spec, TERMINAL_FILES)})
        out = root / "elsewhere" / "out"
        render(project, out, jobs=1)
        trees.append(tree(out))
        task = yaml.safe_load((out / "t1" / "task.yaml").read_text())
        assert task["instruction"] == values["instruction"]
        assert task["tags"] == values["tags"]
    assert trees[0] == trees[1]


def test_parallel_render_matches_serial(tmp_path: Path) -> None:
    tasks = {f"t{i:03d}": (terminal_spec(instruction=f"Task {i}\n"), TERMINAL_FILES)
             for i in range(450)}
    project = build_project(tmp_path / "p", tasks)
    render(project, tmp_path / "serial", jobs=1)
    render(project, tmp_path / "parallel", jobs=2)
    assert tree(tmp_path / "serial") == tree(tmp_path / "parallel")


def test_default_templates_pass_the_consumer_lint(tmp_path: Path) -> None:
    """Render skips the Terminal-Bench lint for gen's own templates: prove they pass it."""
    from generator.lint.tb import lint_tb_task
    from generator.lock.lockset import read_lockset
    from generator.render.task import render_task
    from generator.render.templates import TemplateSet
    from generator.spec.project import load_project
    from tests.helpers import demo_project

    project = demo_project(tmp_path / "p")
    loaded = load_project(project)
    templates = TemplateSet(project / "templates")
    for task in loaded.tasks:
        lint_tb_task(task.id, render_task(task, loaded.config, read_lockset(project), templates))


# --- the render cache: skips only what is provably unchanged ------------------------------


def test_cache_reuses_unchanged_tasks_and_notices_edits(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.render.cache as R

    monkeypatch.setattr(R, "RACY_NS", 0)  # no racy re-checks: only signatures decide here
    monkeypatch.setattr(R, "COARSE_RACY_NS", 0)
    project = demo_project(tmp_path / "p")
    out = project / "dataset"
    first = render(project)
    assert first.cached_tasks == 0 and first.written
    again = render(project)
    assert again.cached_tasks == again.tasks == 2 and not again.written and not again.removed
    # a stray file in a task's output dir changes the dir's signature: removed
    (out / "hello" / "stray.txt").write_text("x")
    result = render(project)
    assert result.removed == ["hello/stray.txt"] and result.cached_tasks == 1
    # an output edited by hand (other size) is restored
    (out / "hello" / "task.yaml").write_text("instruction: hacked\n")
    assert render(project).written == ["hello/task.yaml"]
    # an input edited (the spec's instruction) re-renders that task only
    spec_file = project / "tasks" / "hello" / "task.spec.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["instruction"] = spec["instruction"].rstrip("\n") + " Then exit.\n"
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = render(project)
    assert result.cached_tasks == 1 and "hello/task.yaml" in result.written
    assert "Then exit." in (out / "hello" / "task.yaml").read_text()
    # a file appearing in a task's lock dir is noticed (the dir's signature changes)
    assert render(project).cached_tasks == 2
    lock_dir = project / "lockfiles" / "tasks" / "hello"
    lock_dir.mkdir(parents=True, exist_ok=True)
    (lock_dir / "notes.txt").write_text("x\n")
    result = render(project)
    assert result.cached_tasks == 1 and not result.written
    # a lock file rewritten in place (its dir's mtime does not change) is noticed too
    assert render(project).cached_tasks == 2
    apt_lock = lock_dir / "apt.lock"
    before = lock_dir.stat().st_mtime_ns
    text = apt_lock.read_text()
    with apt_lock.open("r+") as f:
        f.write(text)
    os.utime(apt_lock, ns=(apt_lock.stat().st_atime_ns, apt_lock.stat().st_mtime_ns + 10**9))
    assert lock_dir.stat().st_mtime_ns == before
    result = render(project)
    assert result.cached_tasks == 1 and not result.written
    assert render(project, check=True).changed() == []


def test_cache_does_not_trust_racily_clean_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit that keeps size and mtime (a same-tick edit) is invisible to signatures; files
    whose mtime is within RACY_NS of their signing are therefore re-checked by content."""
    import generator.render.cache as R

    project = demo_project(tmp_path / "p")
    target = project / "dataset" / "hello" / "run-tests.sh"

    def tamper() -> None:
        st = target.stat()
        data = target.read_bytes()
        with open(target, "r+b") as f:  # in place: same inode, same size
            f.write(b"#" if data[:1] != b"#" else b"!")
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime

    monkeypatch.setattr(R, "RACY_NS", 0)
    monkeypatch.setattr(R, "COARSE_RACY_NS", 0)
    render(project)
    good = target.read_bytes()
    tamper()
    assert render(project).cached_tasks == 2  # the limit of signatures, without the rule
    assert target.read_bytes() != good
    monkeypatch.setattr(R, "RACY_NS", 10**18)  # everything counts as just written
    monkeypatch.setattr(R, "COARSE_RACY_NS", 10**18)
    result = render(project)
    assert result.cached_tasks == 0 and result.written == ["hello/run-tests.sh"]
    assert target.read_bytes() == good


def test_cache_checks_in_forked_workers_match_serial(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import generator.render.cache as R

    specs = {f"t{i:03d}": (terminal_spec(instruction=f"Task {i}.\n"), TERMINAL_FILES)
             for i in range(30)}
    project = build_project(tmp_path / "p", specs)
    monkeypatch.setattr(R, "RACY_NS", 0)
    monkeypatch.setattr(R, "COARSE_RACY_NS", 0)
    monkeypatch.setattr(R, "FORK_CHECK_MIN", 10)
    render(project, jobs=2)
    (project / "dataset" / "t007" / "README.md").write_text("edited\n")
    (project / "tasks" / "t011" / "tests" / "extra_test.py").write_text("def test_x(): pass\n")
    result = render(project, jobs=2)
    assert result.cached_tasks == 28
    assert "t007/README.md" in result.written and "t011/tests/extra_test.py" in result.written


def test_deleted_output_dir_is_rendered_again_in_full(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With the output dir gone, no cache entry is trusted (none is even checked)."""
    import generator.render.cache as R

    monkeypatch.setattr(R, "RACY_NS", 0)
    monkeypatch.setattr(R, "COARSE_RACY_NS", 0)
    project = demo_project(tmp_path / "p")
    first = render(project)
    shutil.rmtree(project / "dataset")
    again = render(project)
    assert again.cached_tasks == 0 and again.written == first.written
    assert render(project).cached_tasks == again.tasks  # the cache was saved again
    assert render(project, check=True).changed() == []


def test_file_or_link_where_a_task_dir_goes_is_replaced(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    out = project / "dataset"
    shutil.rmtree(out / "hello")
    (out / "hello").write_text("not a directory\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / "calc-add")
    (out / "calc-add").symlink_to(elsewhere)
    result = render(project)
    assert "hello" in result.removed and "calc-add" in result.removed
    assert (out / "hello").is_dir() and not (out / "calc-add").is_symlink()
    assert list(elsewhere.iterdir()) == []  # nothing written through the link
    assert render(project, check=True).changed() == []


def test_default_dockerfiles_match_the_shared_macros(tmp_path: Path) -> None:
    """The default Dockerfile templates write out _macros.j2's blocks (an import "with
    context" costs more than the rest of the template): they must render what the macros
    render, with and without apt, Python packages and env."""
    package = Path(__file__).resolve().parents[2] / "generator" / "templates"
    macro_form = '{% import "_macros.j2" as m with context -%}\n{{ m.preamble() }}\n' \
                 '{{ m.install_locked() }}'
    tasks = {
        "plain": (terminal_spec(), TERMINAL_FILES),
        "full": (terminal_spec(environment={"apt": ["python3", "python3-pip", "python3-pytest"],
                                            "python": ["requests==2.32.3"],
                                            "env": {"A": "1", "B_2": "two words"}}),
                 TERMINAL_FILES),
        "calc": (swe_spec(), SWE_FILES),
        "calc-env": (swe_spec(environment={"apt": ["git", "python3", "python3-pytest"],
                                           "env": {"X": "y"}}), SWE_FILES),
    }
    project = build_project(tmp_path / "p", tasks)
    render(project, tmp_path / "inline", jobs=1)
    for kind in ("terminal", "swe"):
        text = (package / kind / "Dockerfile.j2").read_text()
        body = text.split("-#}\n", 1)[1]
        cut = body.index("{% endif %}\n\n", body.index("{% if env %}")) + len("{% endif %}\n")
        assert "{% import" not in body and "WORKDIR" not in body[:cut]
        (project / "templates" / kind).mkdir(parents=True)
        (project / "templates" / kind / "Dockerfile.j2").write_text(macro_form + body[cut:])
    render(project, tmp_path / "macros", jobs=1)
    for task_id in tasks:
        inline = (tmp_path / "inline" / task_id / "Dockerfile").read_text()
        assert inline == (tmp_path / "macros" / task_id / "Dockerfile").read_text(), task_id
    full = (tmp_path / "inline" / "full" / "Dockerfile").read_text()
    assert "pip install" in full and 'B_2="two words"' in full


@pytest.mark.parametrize("expr", ["d.a", "d.x.y", "d.items", "d.keys()", "d.get('a')",
                                  "d.nope is undefined", "d.x.nope is defined", "e.a"])
def test_attribute_lookup_answers_as_jinja(expr: str) -> None:
    """The environment's dict fast path gives what Jinja's own lookup gives, also for keys
    named like dict methods (the method wins, as in Jinja)."""
    import collections

    import jinja2

    from generator.render.templates import make_environment

    values = {"d": {"a": 1, "items": 5, "keys": 6, "x": {"y": 2}},
              "e": collections.OrderedDict(a=3)}
    source = "{{ " + expr + " }}"
    ours = make_environment([]).from_string(source).render(**values)
    plain = jinja2.Environment(undefined=jinja2.StrictUndefined)
    assert ours == plain.from_string(source).render(**values)
    with pytest.raises(jinja2.UndefinedError, match="has no attribute 'nope'"):
        make_environment([]).from_string("{{ d.nope }}").render(**values)
