"""`gen export` (generator/export/run.py) and its consumer lints (generator/lint/).

Offline: the demo project (tests/helpers.py) with synthetic locks and a synthetic
images.json. Loading the output with the consumers' own code is in tests/consumers/.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.core.errors import InputError, LintError, UsageError
from generator.export.common import ExportPlan
from generator.export.docker import load_into_docker, read_export_images
from generator.export.run import plan_export, write_export
from generator.export.toml import toml_document
from generator.image.images import BuiltImage, save_images
from generator.image.toolchain import seal_script, toolchain_for
from generator.lint.harbor import lint_harbor_task
from generator.lint.swebench import expected_swebench_image, lint_swebench_instances
from generator.lint.tb import lint_tb_dataset, lint_tb_task
from generator.render.context import RenderedFile
from generator.render.pipeline import plan_render
from tests.helpers import (
    GOLD_PATCH,
    SWE_FILES,
    build_project,
    demo_project,
    fake_digest,
    fake_toolchain,
    swe_spec,
)


def _images(project: Path, tasks: list[str], **over: str) -> dict[str, BuiltImage]:
    images = {}
    for t in tasks:
        digest = fake_digest(f"image-{t}")
        repo = f"127.0.0.1:5000/demo/{t}"
        fields = {"ref": f"{repo}@{digest}", "repository": repo, "digest": digest,
                  "platform": "linux/amd64", "key": fake_digest(f"key-{t}"),
                  "engine": "buildah 1.28.2", "layout": f".gen/build/oci/{t}", **over}
        images[t] = BuiltImage(task=t, **fields)  # type: ignore[arg-type]
        fake_toolchain(project, fields["digest"])
    save_images(project, images)
    return images


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return demo_project(tmp_path / "project")


@pytest.fixture
def built(project: Path) -> Path:
    _images(project, ["hello", "calc-add"])
    return project


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            p = Path(dirpath) / d
            out[p.relative_to(root).as_posix() + "/"] = (b"", stat.S_IMODE(p.stat().st_mode))
        for f in files:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


# --------------------------------------------------------------------------------------
# TOML writer
# --------------------------------------------------------------------------------------


def test_toml_document_round_trips() -> None:
    doc = {"schema_version": "1.4",
           "task": {"name": "a/b", "authors": [{"name": 'x "y"', "email": "e"}],
                    "keywords": []},
           "metadata": {"n": 1, "f": 2.5, "b": True, "nested": {"k": ["v"]},
                        "weird key": "\u007f\t\n\\"},
           "solution": {"env": {}}}
    text = toml_document(doc)
    assert tomllib.loads(text) == doc
    assert text.startswith('schema_version = "1.4"\n\n[task]\n')


@settings(max_examples=200, deadline=None)
@given(st.text(), st.dictionaries(st.text(min_size=1), st.text() | st.integers() | st.booleans(),
                                   max_size=4))
def test_toml_strings_and_keys_round_trip(value: str, table: dict[str, object]) -> None:
    doc = {"s": value, "t": table}
    assert tomllib.loads(toml_document(doc)) == doc


# --------------------------------------------------------------------------------------
# Terminal-Bench
# --------------------------------------------------------------------------------------


def test_tb_export_without_images_is_the_render_output(project: Path) -> None:
    plan = plan_export(project, "tb")
    rendered = plan_render(project)
    assert plan.files == dict(sorted(rendered.files.items()))
    assert plan.unbuilt == ["calc-add", "hello"] and plan.images == {}


def test_tb_export_runs_built_images_by_digest(built: Path) -> None:
    plan = plan_export(built, "tb")
    compose = plan.files["hello/docker-compose.yaml"].data.decode()
    ref = f"127.0.0.1:5000/demo/hello@{fake_digest('image-hello')}"
    assert f"    image: {ref}\n" in compose
    assert "build:" not in compose and "container_name: ${T_BENCH_TASK_DOCKER_CLIENT_" in compose
    assert plan.images["hello"] == ref and plan.unbuilt == []
    # everything else is the render output, byte for byte, the test scripts' toolchain record
    # line filled in from the image (sealed grading)
    rendered = plan_render(built).files
    def seal(k: str, v: RenderedFile) -> RenderedFile:
        if not k.endswith(".sh"):
            return v
        record = toolchain_for(built, "", fake_digest(f"image-{k.split('/')[0]}"))
        return RenderedFile(seal_script(v.data.decode(), record).encode(), v.mode)

    sealed = {k: seal(k, v) for k, v in rendered.items()}
    assert sealed["hello/run-tests.sh"] != rendered["hello/run-tests.sh"]
    assert {k: v for k, v in plan.files.items() if not k.endswith("docker-compose.yaml")} == \
        {k: v for k, v in sealed.items() if not k.endswith("docker-compose.yaml")}


def test_export_is_deterministic_and_modes_are_fixed(built: Path, tmp_path: Path) -> None:
    for fmt in ("tb", "harbor", "swebench"):
        a, b = tmp_path / f"{fmt}-a", tmp_path / f"{fmt}-b"
        old = os.umask(0o077)
        try:
            write_export(plan_export(built, fmt), a, project=built)
        finally:
            os.umask(old)
        write_export(plan_export(built, fmt), b, project=built)
        ta, tb_ = _tree(a), _tree(b)
        assert ta == tb_, fmt
        assert {mode for _, mode in ta.values()} <= {0o644, 0o755}
        assert all(mode == 0o755 for rel, (_, mode) in ta.items() if rel.endswith("/"))
        assert all(mode == 0o755 for rel, (_, mode) in ta.items() if rel.endswith(".sh"))
        assert not [p for p in os.listdir(tmp_path) if ".gen-" in p]  # no temp dirs left


# --------------------------------------------------------------------------------------
# Harbor
# --------------------------------------------------------------------------------------


def test_harbor_export_layout(built: Path) -> None:
    plan = plan_export(built, "harbor")
    names = {p.split("/", 1)[1] for p in plan.files if p.startswith("hello/")}
    assert {"task.toml", "instruction.md", "environment/Dockerfile", "tests/test.sh",
            "tests/run-tests.sh", "tests/test_outputs.py", "solution/solve.sh"} <= names
    cfg = tomllib.loads(plan.files["hello/task.toml"].data.decode())
    ref = f"127.0.0.1:5000/demo/hello@{fake_digest('image-hello')}"
    assert cfg["schema_version"] == "1.4"
    assert cfg["task"]["name"] == "demo/hello"
    assert cfg["environment"]["docker_image"] == ref
    assert cfg["verifier"] == {"timeout_sec": 120.0, "environment_mode": "shared"}
    assert cfg["agent"] == {"timeout_sec": 600.0}
    assert cfg["metadata"]["difficulty"] == "easy" and cfg["solution"] == {"env": {}}
    assert plan.files["hello/environment/Dockerfile"].data.decode().endswith(f"FROM {ref}\n")
    test_sh = plan.files["hello/tests/test.sh"]
    assert test_sh.mode == 0o755 and b"/logs/verifier/reward.txt" in test_sh.data
    assert plan.files["calc-add/tests/test.patch"].data.startswith(b"diff --git")
    assert plan.files["hello/instruction.md"].data == \
        b"Fix the script /app/hello.py so it prints 'hello'.\n"


def test_harbor_and_swebench_refuse_unbuilt_tasks(project: Path) -> None:
    _images(project, ["hello"])  # calc-add not built
    for fmt in ("harbor", "swebench"):
        with pytest.raises(InputError) as err:
            plan_export(project, fmt)
        assert "task calc-add has no built image" in err.value.one_line()
        assert "run `gen build`" in err.value.one_line()


def test_allow_unbuilt_exports_the_dockerfile_build(project: Path) -> None:
    plan = plan_export(project, "harbor", allow_unbuilt=True)
    cfg = tomllib.loads(plan.files["hello/task.toml"].data.decode())
    assert "docker_image" not in cfg["environment"]
    rendered = plan_render(project).files
    assert plan.files["hello/environment/Dockerfile"] == rendered["hello/Dockerfile"]
    assert plan.files["hello/environment/files/app/hello.py"] == \
        rendered["hello/files/app/hello.py"]
    assert plan.unbuilt == ["calc-add", "hello"]
    sw = plan_export(project, "swebench", allow_unbuilt=True)
    assert sw.files["tasks/calc-add/Dockerfile"] == rendered["calc-add/Dockerfile"]
    assert sw.docker_tags == {}


# --------------------------------------------------------------------------------------
# SWE-bench
# --------------------------------------------------------------------------------------


def test_swebench_instances(built: Path) -> None:
    plan = plan_export(built, "swebench")
    text = plan.files["instances.jsonl"].data.decode()
    assert text.endswith("}\n") and "\n\n" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["instance_id"] for r in rows] == ["calc-add"]
    row = rows[0]
    assert set(row) == {"instance_id", "repo", "base_commit", "version", "problem_statement",
                        "hints_text", "created_at", "patch", "test_patch", "FAIL_TO_PASS",
                        "PASS_TO_PASS", "environment_setup_commit", "image", "eval_script",
                        "log_parser", "eval_type"}
    assert row["image"] == "swebench/sweb.eval.x86_64.calc-add:latest"
    assert json.loads(row["FAIL_TO_PASS"]) == ["tests/test_calc.py::test_add"]
    assert row["patch"] == GOLD_PATCH and row["created_at"] == "2023-11-14T22:13:20Z"
    assert row["eval_script"] == seal_script(
        plan_render(built).files["calc-add/eval.sh"].data.decode(),
        toolchain_for(built, "", fake_digest("image-calc-add")))
    assert "GEN_RECORD='{" in row["eval_script"]
    ref = f"127.0.0.1:5000/demo/calc-add@{fake_digest('image-calc-add')}"
    assert plan.docker_tags == {row["image"]: ref}
    assert plan.tasks == ["calc-add"]
    for name in ("task.yaml", "tests.json", "eval.sh", "gold.patch", "test.patch",
                 "problem_statement.md", "Dockerfile"):
        assert f"tasks/calc-add/{name}" in plan.files
    assert plan.files["tasks/calc-add/eval.sh"].mode == 0o755
    assert "sweb.yaml" in plan.files


def test_swebench_images_file(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    write_export(plan_export(built, "swebench"), out, project=built)
    assert read_export_images(out) == {
        "swebench/sweb.eval.x86_64.calc-add:latest":
            f"127.0.0.1:5000/demo/calc-add@{fake_digest('image-calc-add')}"}


# characters a YAML reader treats as line breaks or refuses, where JSON leaves them raw
ODD = "a\u0085b\u2028c\u2029d\ufeffe"


@pytest.mark.parametrize("fmt", ["swebench", "harbor", "tb"])
def test_free_text_round_trips_through_every_exported_file(tmp_path: Path, fmt: str) -> None:
    """Every YAML, TOML and JSON file of an export gives back the spec's free text exactly:
    json.dumps(value, ensure_ascii=False) into YAML (the SWE-bench task.yaml did that) leaves
    NEL raw, and PyYAML folds it into a space."""
    spec = swe_spec(version=f"1.0 {ODD}", problem_statement=f"Fix it {ODD}\n",
                    hints=f"hint {ODD}")
    project = build_project(tmp_path / "p", {"calc-add": (spec, SWE_FILES)})
    _images(project, ["calc-add"])
    plan = plan_export(project, fmt)
    seen: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            seen.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for name, f in sorted(plan.files.items()):
        text = f.data.decode("utf-8")
        if name.endswith((".yaml", ".yml")):
            walk(yaml.safe_load(text))
        elif name.endswith(".toml"):
            walk(tomllib.loads(text))
        elif name.endswith(".json"):
            walk(json.loads(text))
        elif name.endswith(".jsonl"):
            for line in text.splitlines():  # as swebench reads it: NEL, U+2028 split a line
                walk(json.loads(line))
        elif name.endswith(".md"):
            seen.extend([text] if ODD in text else [])
    odd_values = [v for v in seen if "a" in v and "e" in v and "\u2028" in v]
    assert odd_values, f"no exported structured file carries the free text ({fmt})"
    assert all(ODD in v for v in odd_values), odd_values
    if fmt == "swebench":
        assert f"1.0 {ODD}" in seen  # task.yaml's version, written by yamltext.scalar


def test_swebench_needs_a_swe_task(built: Path) -> None:
    with pytest.raises(InputError, match="no swe tasks"):
        plan_export(built, "swebench", only=["hello"])


def test_expected_image_name_matches_swebench() -> None:
    assert expected_swebench_image("django__django-1") == \
        "swebench/sweb.eval.x86_64.django_1776_django-1:latest"
    assert expected_swebench_image("A-b") == "swebench/sweb.eval.x86_64.a-b:latest"


def test_bad_images_json_is_an_input_error(project: Path) -> None:
    _images(project, ["hello", "calc-add"], digest="sha256:nope")
    with pytest.raises(InputError, match="digest"):
        plan_export(project, "harbor")


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def test_write_replaces_an_earlier_export_only(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "tb"
    write_export(plan_export(built, "tb"), out, project=built)
    (out / "hello" / "stale.txt").write_text("left over\n")
    write_export(plan_export(built, "tb", only=["hello"]), out, project=built)
    assert sorted(os.listdir(out)) == ["hello"]
    assert not (out / "hello" / "stale.txt").exists()

    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me\n")
    with pytest.raises(UsageError, match="not a tb export"):
        write_export(plan_export(built, "tb"), other, project=built)
    assert (other / "mine.txt").read_text() == "keep me\n"
    with pytest.raises(UsageError, match="not a harbor export"):
        write_export(plan_export(built, "harbor"), out, project=built)
    for bad in (built / "dataset", built, built / "tasks" / "x"):
        with pytest.raises(UsageError):
            write_export(plan_export(built, "tb"), bad, project=built)


def test_cli_export_json_report(built: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "harbor"
    rc = main(["export", "--project", str(built), "--format", "harbor", "--out", str(out),
               "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0, report
    assert report["format"] == "harbor" and report["tasks"] == ["calc-add", "hello"]
    assert report["images"]["hello"].endswith(fake_digest("image-hello"))
    assert (out / "hello" / "task.toml").is_file()


def test_cli_errors(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", "--project", str(project), "--format", "harbor", "--out",
               str(tmp_path / "h")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1, err
    assert "task calc-add has no built image (fix: run `gen build`" in err
    assert not (tmp_path / "h").exists()
    rc = main(["export", "--project", str(project), "--format", "tb", "--load", "--out",
               str(tmp_path / "t")])
    assert rc == 2 and "--load only applies" in capsys.readouterr().err


def test_load_into_docker_with_nothing_to_do() -> None:
    assert load_into_docker({}) == []


# --------------------------------------------------------------------------------------
# Consumer lints: what the consumers would ignore silently
# --------------------------------------------------------------------------------------


def _rendered_task(project: Path, task_id: str) -> dict[str, RenderedFile]:
    files = plan_render(project).files
    return {k.split("/", 1)[1]: v for k, v in files.items() if k.startswith(task_id + "/")}


def _with(files: dict[str, RenderedFile], name: str, text: str,
          mode: int = 0o644) -> dict[str, RenderedFile]:
    return {**files, name: RenderedFile(text.encode(), mode)}


def test_tb_lint_accepts_the_render_output(project: Path) -> None:
    lint_tb_task("hello", _rendered_task(project, "hello"))
    lint_tb_task("calc-add", _rendered_task(project, "calc-add"))


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda y: y.replace("max_test_timeout_sec:", "max_test_timeout:"),
     "unknown key 'max_test_timeout': terminal-bench ignores it silently (fix: rename it to "
     "'max_test_timeout_sec')"),
    (lambda y: y.replace("difficulty: easy\n", ""), "missing required field 'difficulty'"),
    (lambda y: y.replace("difficulty: easy", "difficulty: trivial"), "difficulty"),
    (lambda y: y.replace("parser_name: pytest", "parser_name: junit"), "parser_name"),
    (lambda y: y.replace("disable_asciinema: true", "disable_asciinema: 'yes'"), "true or false"),
    (lambda y: y + "colour: blue\n", "unknown key 'colour'"),
])
def test_tb_lint_rejects_task_yaml(project: Path, edit: object, expected: str) -> None:
    files = _rendered_task(project, "hello")
    text = files["task.yaml"].data.decode()
    with pytest.raises(LintError) as err:
        lint_tb_task("hello", _with(files, "task.yaml", edit(text)))  # type: ignore[operator]
    assert expected in err.value.one_line()
    assert "task.yaml" in err.value.one_line()


def test_tb_lint_rejects_layout(project: Path) -> None:
    files = _rendered_task(project, "hello")
    for name, expected in (("run-tests.sh", "run-tests.sh is missing"),
                           ("docker-compose.yaml", "docker-compose.yaml is missing"),
                           ("Dockerfile", "Dockerfile 'Dockerfile' is missing"),
                           ("solution.sh", "no solution.sh")):
        with pytest.raises(LintError, match=expected):
            lint_tb_task("hello", {k: v for k, v in files.items() if k != name})
    compose = files["docker-compose.yaml"].data.decode()
    with pytest.raises(LintError, match="container_name"):
        lint_tb_task("hello", _with(files, "docker-compose.yaml",
                                    compose.replace("container_name", "name")))
    with pytest.raises(LintError, match="TEST_DIR"):
        lint_tb_task("hello", _with(files, "docker-compose.yaml",
                                    compose.replace("TEST_DIR=", "TESTS=")))
    with pytest.raises(LintError, match="compose project name"):
        lint_tb_task("Hello", files)
    with pytest.raises(LintError, match="-rA"):
        lint_tb_task("hello", _with(files, "run-tests.sh", "#!/bin/bash\npytest /tests\n", 0o755))
    with pytest.raises(LintError, match="not executable"):
        lint_tb_task("hello", _with(files, "run-tests.sh",
                                    files["run-tests.sh"].data.decode(), 0o644))


def test_tb_lint_rejects_shared_instructions(project: Path) -> None:
    files = _rendered_task(project, "hello")
    with pytest.raises(LintError, match="same instruction as task 'a'"):
        lint_tb_dataset({"a": files, "b": files})


def test_harbor_lint(built: Path) -> None:
    plan = plan_export(built, "harbor")
    files = {k.split("/", 1)[1]: v for k, v in plan.files.items() if k.startswith("hello/")}
    lint_harbor_task("hello", files)
    toml = files["task.toml"].data.decode()
    cases = [
        (_with(files, "task.toml", toml.replace("[verifier]", "[verifer]")),
         "unknown key 'verifer': harbor ignores it silently (fix: rename it to 'verifier')"),
        (_with(files, "task.toml", toml.replace("timeout_sec = 600.0", "timeout = 600.0")),
         "unknown key 'timeout'"),
        (_with(files, "task.toml", toml.replace('name = "demo/hello"', 'name = "hello"')),
         "org/name"),
        (_with(files, "task.toml", toml.replace("@sha256:", ":sha256-")), "not pinned by digest"),
        ({k: v for k, v in files.items() if k != "tests/test.sh"}, "drops the task silently"),
        ({k: v for k, v in files.items() if k != "solution/solve.sh"}, "solve.sh is missing"),
        ({k: v for k, v in files.items() if not k.startswith("environment/")}, "environment/"),
        (_with(files, "tests/test.sh", "#!/bin/bash\nexit 0\n", 0o755), "reward.txt"),
        (_with(files, "instruction.md", "\n"), "instruction.md"),
    ]
    for broken, expected in cases:
        with pytest.raises(LintError) as err:
            lint_harbor_task("hello", broken)
        assert expected in err.value.one_line()


def test_swebench_lint(built: Path) -> None:
    plan = plan_export(built, "swebench")
    row = json.loads(plan.files["instances.jsonl"].data)
    lint_swebench_instances([row])
    cases = [
        ([{**row, "FAIL_TO_PAS": "[]"}], "unknown key 'FAIL_TO_PAS': swebench ignores it"),
        ([row, row], "repeats row 1"),
        ([{**row, "log_parser": "parse_log_nope"}], "PARSER_REGISTRY"),
        ([{**row, "eval_type": "sometimes"}], "EvalType"),
        ([{**row, "eval_script": "pytest\n"}], "marker"),
        ([{**row, "FAIL_TO_PASS": "[]"}], "no FAIL_TO_PASS"),
        ([{k: v for k, v in row.items() if k != "image"}], "has no 'image'"),
        ([{**row, "instance_id": "a b"}], "cannot name a container"),
    ]
    for rows, expected in cases:
        with pytest.raises(LintError) as err:
            lint_swebench_instances(rows)
        assert expected in err.value.one_line()


def test_swebench_task_repo_lint(built: Path) -> None:
    from generator.lint.swebench import lint_swebench_task_repo

    files = dict(plan_export(built, "swebench").files)
    meta = files["tasks/calc-add/task.yaml"].data.decode()
    bad = dict(files)
    bad["tasks/calc-add/task.yaml"] = RenderedFile(
        meta.replace("swebench/sweb.eval.x86_64.calc-add:latest", "calc:latest").encode(), 0o644)
    with pytest.raises(LintError, match="not the name swebench derives"):
        lint_swebench_task_repo(bad)
    with pytest.raises(LintError, match="the loader skips the task"):
        lint_swebench_task_repo({k: v for k, v in files.items() if not k.endswith("task.yaml")})


def test_export_refuses_what_a_consumer_would_ignore(built: Path) -> None:
    """A dataset template override that misspells a tb key is refused at export time."""
    override = built / "templates" / "task.yaml.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    original = (Path(__file__).parents[2] / "generator" / "templates" / "task.yaml.j2").read_text()
    override.write_text(original.replace("max_agent_timeout_sec:", "max_agent_timout_sec:"))
    with pytest.raises(LintError, match="max_agent_timout_sec"):
        plan_export(built, "tb")


def test_export_plan_is_typed() -> None:
    plan = ExportPlan(format="tb")
    assert plan.files == {} and plan.docker_tags == {}


def test_sealed_and_unsealed_tasks_in_the_harbor_verifier(built: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    """A sealed task's test.sh lets the grader write the reward (reward.json reset first); a
    task whose test command is not a plain pytest call falls back to the exit code, and the
    export warns about it by name."""
    plan = plan_export(built, "harbor")
    sealed = plan.files["hello/tests/test.sh"].data.decode()
    assert "exec bash /tests/run-tests.sh --reward-dir /logs/verifier" in sealed
    assert "echo '{\"reward\": 0}' > /logs/verifier/reward.json" in sealed
    assert "GEN_RECORD='{" in plan.files["hello/tests/run-tests.sh"].data.decode()
    assert plan.unsealed == []

    spec = built / "tasks" / "hello" / "task.spec.yaml"
    spec.write_text(spec.read_text() + "tests: {dir: tests, command: 'python3 -m pytest -rA "
                    "\"$TEST_DIR\" | tee /tmp/log'}\n")
    plan = plan_export(built, "harbor")
    plain = plan.files["hello/tests/test.sh"].data.decode()
    assert "--reward-dir" not in plain and "rm -f /logs/verifier/reward.json" in plain
    assert plan.unsealed == ["hello"]
    out = tmp_path / "out"
    assert main(["export", "--project", str(built), "--format", "harbor", "--out",
                 str(out)]) == 0
    said = capsys.readouterr().out
    assert "warning: 1 task(s) not graded sealed" in said and ": hello;" in said
