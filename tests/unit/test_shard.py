"""--shard I/N selection and `gen merge-shards` (pure: synthetic shard dirs, no builds)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.cli import main
from generator.core.errors import CheckFailed, InputError, SpecError, UsageError
from generator.release.shard import Shard, merge_shards, parse_shard, shard_tasks
from generator.spec.scaffold import init_project

IDS = st.lists(st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True), unique=True,
               max_size=40)


@settings(max_examples=200, deadline=None)
@given(IDS, st.integers(min_value=1, max_value=9))
def test_shards_are_disjoint_cover_everything_and_balance(ids: list[str], n: int) -> None:
    parts = [Shard(i, n).select(ids) for i in range(1, n + 1)]
    flat = [t for p in parts for t in p]
    assert sorted(flat) == sorted(ids)
    assert len(flat) == len(set(flat))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    # the order the ids come in does not matter
    assert [Shard(i, n).select(list(reversed(ids))) for i in range(1, n + 1)] == parts


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "2", "a/b", "", "-1/2", "1/2/3"])
def test_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="is not I/N") as err:
        parse_shard(text)
    assert err.value.exit_code == 2 and "--shard 1/4" in err.value.one_line()


def test_parse_shard() -> None:
    assert parse_shard("2/5") == Shard(2, 5) and str(Shard(2, 5)) == "2/5"
    assert parse_shard(" 1/1 ") == Shard(1, 1)


def _project(root: Path, tasks: tuple[str, ...] = ("alpha", "beta", "gamma")) -> Path:
    init_project(root, name="shardtest", source_date_epoch=1700000000)
    src = root / "tasks" / "hello-world"
    for t in tasks:
        shutil.copytree(src, root / "tasks" / t)
    shutil.rmtree(src)
    return root


def test_shard_tasks_and_names_with_shard(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert shard_tasks(project, None, []) is None
    assert shard_tasks(project, None, ["beta"]) == ["beta"]
    assert shard_tasks(project, Shard(1, 2), []) == ["alpha", "gamma"]
    assert shard_tasks(project, Shard(2, 2), []) == ["beta"]
    assert shard_tasks(project, Shard(4, 4), []) == []
    with pytest.raises(UsageError, match="name no TASK"):
        shard_tasks(project, Shard(1, 2), ["alpha"])


@pytest.mark.parametrize("command", ["render", "lock", "shard"])
def test_every_command_refuses_a_task_dir_without_a_spec(tmp_path: Path, command: str,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """One task discovery (spec.project.discover_tasks): sharding used to drop such a directory
    silently, where render refused it."""
    project = _project(tmp_path)
    (project / "tasks" / "delta").mkdir()
    if command == "shard":
        with pytest.raises(SpecError, match=r"task directory has no task\.spec\.yaml") as exc:
            shard_tasks(project, Shard(1, 2), [])
        assert exc.value.file == "tasks/delta"
        return
    argv = [command, "--project", str(project)] + (["--check"] if command == "lock" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "tasks/delta" in err and "has no task.spec.yaml" in err


def test_cli_shard_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["build", "--project", str(project), "--shard", "3/2"])
    assert exc.value.code == 2
    assert "is not I/N" in capsys.readouterr().err
    assert main(["validate", "--project", str(project), "--shard", "1/2", "alpha"]) == 2
    assert "name no TASK" in capsys.readouterr().err
    for command in ("fetch", "build", "verify-reproducible", "validate"):
        assert main([command, "--project", str(project), "--shard", "5/5"]) == 0
        assert "shard 5/5 has no tasks" in capsys.readouterr().out
    out = tmp_path / "verify.json"
    assert main(["verify-reproducible", "--project", str(project), "--shard", "4/4",
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())["shard"] == "4/4"
    assert "shard 4/4 has no tasks" in capsys.readouterr().out


# -- merge-shards ------------------------------------------------------------------------

def _digest(task: str, salt: str = "") -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(f"{task}{salt}".encode()).hexdigest()


def _record(task: str, salt: str = "") -> dict[str, Any]:
    key = _digest(task, "key")
    return {"digest": _digest(task, salt), "engine": "buildah 1.28.2",
            "key": key, "layout": f".gen/build/oci/{key.split(':')[1]}",
            "platform": "linux/amd64", "raw_identical": None,
            "ref": f"127.0.0.1:5000/shardtest/{task}@{_digest(task, salt)}",
            "repository": f"127.0.0.1:5000/shardtest/{task}"}


COND = {"engine": "docker 20.10.24", "runs": 3, "seed": 0, "env": {"TZ": "UTC"},
        "network": "none", "derive": False}


def _shard_dir(root: Path, tasks: list[str], *, validate: dict[str, Any] | None = None,
               layouts: bool = True, salt: str = "") -> Path:
    gen = root / ".gen"
    images = {t: _record(t, salt) for t in tasks}
    (gen / "build").mkdir(parents=True)
    (gen / "build" / "images.json").write_text(json.dumps({"schema": 1, "images": images}))
    if layouts:
        for rec in images.values():
            layout = root / rec["layout"]
            layout.mkdir(parents=True)
            (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": []}')
    if validate is not None:
        (gen / "validate").mkdir()
        report = {**COND, **validate.get("cond", {}), "ok": validate.get("ok", True),
                  "seconds": validate.get("seconds", 10.0), "session": f"s-{root.name}",
                  "leftover_containers": [],
                  "tasks": {t: {"ok": validate.get("ok", True), "flaky": []}
                            for t in validate.get("tasks", tasks)}}
        (gen / "validate" / "report.json").write_text(json.dumps(report))
        (gen / "verify").mkdir()
        (gen / "verify" / "report.json").write_text(json.dumps(
            {"ok": True, "conditions": {"a": {"engine": "buildah"}}, "seconds": 5.0,
             "tasks": {t: {"identical": True} for t in tasks}}))
    return gen


def test_merge_two_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"], validate={"seconds": 30.0})
    b = _shard_dir(tmp_path / "b", ["beta"], validate={"seconds": 12.5})
    assert main(["merge-shards", "--project", str(project), str(a), str(b.parent), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and out["reports"] == {"validate": 3, "verify": 3}
    assert out["layouts_copied"] == 3
    images = json.loads((project / ".gen" / "build" / "images.json").read_text())["images"]
    assert images == {t: _record(t) for t in ("alpha", "beta", "gamma")}
    for rec in images.values():
        assert (project / rec["layout"] / "index.json").is_file()
    report = json.loads((project / ".gen" / "validate" / "report.json").read_text())
    assert report["ok"] is True and report["runs"] == 3 and report["seconds"] == 30.0
    assert sorted(report["tasks"]) == ["alpha", "beta", "gamma"]
    assert report["summary"] == {"tasks": 3, "valid": 3, "failed": 0, "flaky": []}
    assert [s["tasks"] for s in report["shards"]] == [2, 1]
    verify = json.loads((project / ".gen" / "verify" / "report.json").read_text())
    assert verify["ok"] is True and len(verify["tasks"]) == 3


def test_merge_joins_the_fetched_file_names(tmp_path: Path) -> None:
    """Each shard fetched its tasks' artifacts; the merged project knows every file name
    (recomputing a wheel task's input key needs it: gen release checks the images)."""
    project = _project(tmp_path / "p")
    (project / ".gen" / "fetch").mkdir(parents=True)
    (project / ".gen" / "fetch" / "names.json").write_text(json.dumps({"00": "old.deb"}))
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"])
    b = _shard_dir(tmp_path / "b", ["beta"])
    for gen, names in ((a, {"aa": "x-1.0-py3-none-any.whl", "cc": "c.deb"}),
                       (b, {"bb": "y.tar.gz", "cc": "c.deb"})):
        (gen / "fetch").mkdir()
        (gen / "fetch" / "names.json").write_text(json.dumps(names))
    assert main(["merge-shards", "--project", str(project), str(a), str(b)]) == 0
    merged = json.loads((project / ".gen" / "fetch" / "names.json").read_text())
    assert merged == {"00": "old.deb", "aa": "x-1.0-py3-none-any.whl", "bb": "y.tar.gz",
                      "cc": "c.deb"}


def test_a_failed_shard_makes_the_merged_report_fail(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"], validate={})
    b = _shard_dir(tmp_path / "b", ["beta"], validate={"ok": False})
    merge_shards(project, [a, b])
    report = json.loads((project / ".gen" / "validate" / "report.json").read_text())
    assert report["ok"] is False
    assert report["summary"]["failed"] == 1 and report["summary"]["valid"] == 2


def _refused(project: Path, shards: list[Path], match: str) -> CheckFailed:
    with pytest.raises(CheckFailed) as err:
        merge_shards(project, shards)
    assert any(match in p for p in err.value.problems), err.value.problems
    assert err.value.exit_code == 1
    assert not (project / ".gen" / "build" / "images.json").exists(), "wrote despite a failure"
    assert not (project / ".gen" / "validate").exists()
    return err.value


def test_merge_refuses_a_missing_task(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"])
    err = _refused(project, [a], "have no image in any shard: beta")
    assert "did every shard job finish" in err.problems[0]


def test_merge_refuses_two_digests_for_one_task(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"])
    b = _shard_dir(tmp_path / "b", ["beta", "gamma"], salt="other", layouts=False)
    _refused(project, [a, b], "task gamma:")


def test_merge_accepts_the_same_image_from_two_shards(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"])
    b = _shard_dir(tmp_path / "b", ["beta", "gamma"], layouts=False)
    assert merge_shards(project, [a, b]).images == 3


def test_merge_refuses_a_task_the_project_does_not_have(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "beta", "gamma", "delta"])
    _refused(project, [a], "task delta is not in this project")


def test_merge_refuses_reports_made_under_different_conditions(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"], validate={})
    b = _shard_dir(tmp_path / "b", ["beta"], validate={"cond": {"runs": 1}})
    _refused(project, [a, b], "'runs' differs between shards: 3")


def test_merge_refuses_a_validation_that_skipped_tasks(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"], validate={"tasks": ["alpha"]})
    b = _shard_dir(tmp_path / "b", ["beta"], validate={})
    _refused(project, [a, b], "validate: 1 task(s) in no shard's report: gamma")


def test_merge_without_layouts_says_so(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "beta", "gamma"], layouts=False)
    result = merge_shards(project, [a])
    assert result.layouts_missing == ["alpha", "beta", "gamma"] and result.layouts_copied == 0


def test_merge_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path / "p")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"holds no build/images\.json"):
        merge_shards(project, [tmp_path / "empty"])
    bad = tmp_path / "bad" / "build"
    bad.mkdir(parents=True)
    (bad / "images.json").write_text("{not json")
    assert main(["merge-shards", "--project", str(project), str(bad.parent)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_merge_copies_the_build_cache_records_of_the_merged_images(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shard's cache record says where its image came from (the release's notes read
    `pulled_from`); only a record of the merged digest and key is copied."""
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "gamma"])
    b = _shard_dir(tmp_path / "b", ["beta"])

    def put(gen: Path, task: str, **changes: Any) -> bytes:
        rec = _record(task)
        body = {"task": task, "key": rec["key"], "digest": rec["digest"],
                "layout": rec["layout"], "engine": rec["engine"], "platform": rec["platform"],
                "normalize": {}, "pushed": [f"{rec['repository']}:build-x"],
                "pulled_from": f"{rec['repository']}:build-x@{rec['digest']}", **changes}
        data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
        path = gen / "build" / "cache" / (rec["key"].split(":")[1] + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    alpha = put(a, "alpha")
    beta = put(b, "beta")
    put(a, "gamma", digest=_digest("gamma", "other build"))  # not the image merged: skipped
    assert main(["merge-shards", "--project", str(project), str(a), str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records_copied"] == 2
    cache = project / ".gen" / "build" / "cache"
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        _record(t)["key"].split(":")[1] + ".json" for t in ("alpha", "beta"))
    assert (cache / (_record("alpha")["key"].split(":")[1] + ".json")).read_bytes() == alpha
    assert (cache / (_record("beta")["key"].split(":")[1] + ".json")).read_bytes() == beta
    # merging again writes nothing new
    assert main(["merge-shards", "--project", str(project), str(a), str(b), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records_copied"] == 0


def test_merge_takes_the_record_from_any_shard_that_built_the_image(tmp_path: Path) -> None:
    """Two shards built alpha (same digest); only the second kept its cache record."""
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "beta", "gamma"])
    b = _shard_dir(tmp_path / "b", ["alpha"], layouts=False)
    rec = _record("alpha")
    name = rec["key"].split(":")[1] + ".json"
    (b / "build" / "cache").mkdir(parents=True)
    (b / "build" / "cache" / name).write_text(json.dumps(
        {"task": "alpha", "key": rec["key"], "digest": rec["digest"], "pushed": []}))
    assert merge_shards(project, [a, b]).records_copied == 1
    assert (project / ".gen" / "build" / "cache" / name).is_file()


def test_merge_makes_no_record_path_of_a_malformed_key(tmp_path: Path) -> None:
    """A key that is not sha256:<hex> (a hand-edited images.json) names no cache record: a
    path made of it could lead out of the project's cache dir."""
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "beta", "gamma"])
    images_file = a / "build" / "images.json"
    doc = json.loads(images_file.read_text())
    rec = doc["images"]["alpha"]
    rec["key"] = "sha256:../../../escape"
    images_file.write_text(json.dumps(doc))
    # the file that key would name, from this shard's cache dir, with a matching record
    (a / "build" / "cache").mkdir()
    (a.parent / "escape.json").write_text(json.dumps(
        {"task": "alpha", "key": rec["key"], "digest": rec["digest"], "pushed": []}))
    assert merge_shards(project, [a]).records_copied == 0
    assert not (project / "escape.json").exists()


@pytest.mark.parametrize("layout", ["../../../outside", "/abs/oci/x", ".gen/build/oci/..",
                                    ".gen/build/other/x"])
def test_merge_refuses_a_layout_gen_build_does_not_write(tmp_path: Path, layout: str) -> None:
    """A shard's layouts are copied into the project: a record naming one outside
    .gen/build/oci/ (absolute, or climbing out with '..') is refused, nothing written."""
    project = _project(tmp_path / "p")
    a = _shard_dir(tmp_path / "a", ["alpha", "beta", "gamma"])
    images_file = a / "build" / "images.json"
    doc = json.loads(images_file.read_text())
    doc["images"]["alpha"]["layout"] = layout
    images_file.write_text(json.dumps(doc))
    with pytest.raises(CheckFailed, match=f"task alpha's layout '{re.escape(layout)}' is not "
                       "a directory of .gen/build/oci/"):
        merge_shards(project, [a])
    assert not (project / ".gen" / "build" / "images.json").exists()
    assert not (tmp_path / "outside").exists()
