"""`gen release` signs only a consistent set: current locks and dataset, images built from
the current inputs, validated and verified (generator.release.preflight). Offline: the images are
recorded, not built (their keys are what gen build would record)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator.cli import main
from generator.core.cas import default_store
from generator.image.build import input_key, vendored_files
from generator.image.images import BuiltImage, load_images, save_images
from generator.lock.lockset import read_lockset
from generator.release.preflight import preflight
from generator.render.pipeline import render
from generator.spec.project import load_project
from tests.helpers import TERMINAL_FILES, build_project, fake_digest, terminal_spec

ENGINE = "buildah 1.28.2"
TASKS = ("alpha", "beta")


def _record_images(p: Path) -> dict[str, BuiltImage]:
    project, locks = load_project(p), read_lockset(p)
    images = {}
    for task in project.tasks:
        key = input_key(p / "dataset" / task.id,
                        vendored_files(task, locks, {}, default_store(p)),
                        platform="linux/amd64", epoch=1700000000, engine=ENGINE)
        digest = fake_digest("image-" + task.id)
        images[task.id] = BuiltImage(task=task.id, ref=f"127.0.0.1:5000/demo/{task.id}@{digest}",
                                     repository=f"127.0.0.1:5000/demo/{task.id}", digest=digest,
                                     platform="linux/amd64", key=key, engine=ENGINE,
                                     layout=f".gen/build/oci/{key.split(':')[1]}")
    save_images(p, images)
    return images


def _reports(p: Path, images: dict[str, BuiltImage], **change: Any) -> None:
    validate: dict[str, Any] = {"ok": True,
                                "tasks": {t: {"ok": True, "image": images[t].ref} for t in images}}
    verify: dict[str, Any] = {"ok": True, "tasks": {t: {"ok": True, "identical": True,
                                        "digest_a": images[t].digest,
                                        "recorded": {"matches": True}} for t in images}}
    for name, report in (("validate", validate), ("verify", verify)):
        for task, fields in change.get(name, {}).items():
            if fields is None:
                del report["tasks"][task]
            else:
                report["tasks"][task].update(fields)
        (p / ".gen" / name).mkdir(parents=True, exist_ok=True)
        (p / ".gen" / name / "report.json").write_text(json.dumps(report))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    p = build_project(tmp_path / "p", {t: (terminal_spec(), TERMINAL_FILES) for t in TASKS})
    render(p)
    _reports(p, _record_images(p))
    return p


def _release(p: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["release", "--project", str(p), "--sign", "none", "--out",
                 str(p.parent / "rel"), *extra])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def test_a_consistent_project_releases(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert preflight(project).ok
    code, out = _release(project, capsys, "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["checks"] == {"ok": True, "problems": {}, "waived": [], "notes": []}
    code, out = _release(project, capsys)
    assert code == 0 and "checked  lock, render, images, validate, verify" in out


def _refused(p: Path, capsys: pytest.CaptureFixture[str], check: str, words: str,
             allow: str) -> None:
    result = preflight(p)
    assert list(result.problems) == [check], result.problems
    code, out = _release(p, capsys)
    assert code == 1 and f"{check}: " in out and words in out, out
    assert not (p.parent / "rel").exists()  # nothing written, nothing signed
    code, out = _release(p, capsys, "--allow", allow)
    assert code == 0, out
    assert f"(waived: {check})" in out


def test_a_changed_dataset_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "dataset" / "alpha" / "README.md").write_text("edited by hand\n")
    _refused(project, capsys, "render", "dataset/alpha/README.md differs from what the specs "
             "render (run `gen render`)", "stale-dataset")


def test_an_image_from_other_inputs(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = load_images(project)
    images["beta"] = BuiltImage(**{**images["beta"].__dict__, "key": fake_digest("old")})
    save_images(project, images)
    _refused(project, capsys, "images", "task 'beta': its image sha256:", "stale-images")


def test_a_task_without_an_image(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = load_images(project)
    del images["alpha"]
    save_images(project, images)
    result = preflight(project, allow=["unvalidated", "unverified"])
    assert result.problems == {"images": ["task 'alpha' has no image (run `gen build`)"]}


def test_an_image_of_a_removed_task(project: Path) -> None:
    images = load_images(project)
    images["gone"] = BuiltImage(**{**images["beta"].__dict__, "task": "gone"})
    save_images(project, images)
    assert preflight(project).problems == {"images": [
        "images.json records an image for 'gone', which is no task of the project (run "
        "`gen build`: it drops it)"]}


def test_waiving_verify_notes_images_nothing_rebuilt(project: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    img = load_images(project)["alpha"]
    cache = project / ".gen" / "build" / "cache"
    cache.mkdir(parents=True)
    (cache / f"{img.key.split(':')[1]}.json").write_text(json.dumps(
        {"pulled_from": f"{img.repository}:build-x@{img.digest}"}))
    assert preflight(project).notes == []  # verified: nothing to note
    result = preflight(project, allow=["unverified"])
    assert result.ok and len(result.notes) == 1 and "task 'alpha'" in result.notes[0]
    code, out = _release(project, capsys, "--allow", "unverified")
    assert code == 0 and "note: task 'alpha': its image was pulled from the registry" in out


def test_a_stale_lock(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "lockfiles" / "tasks" / "beta" / "apt.lock").unlink()
    result = preflight(project, allow=["stale-images"])
    assert "beta" in result.problems["lock"][0]
    # and the dataset no longer renders without it
    assert result.problems["render"][0].startswith("the specs do not render: ")


@pytest.mark.parametrize("change, words", [
    ({"validate": {"beta": None}}, "1 task(s) not validated: beta"),
    ({"validate": {"beta": {"ok": False}}}, "task 'beta' failed validate"),
    ({"validate": {"beta": {"image": "r@" + fake_digest("other")}}},
     "task 'beta': .gen/validate/report.json is for image sha256:"),
])
def test_validation_must_cover_the_released_images(project: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    change: dict[str, Any], words: str) -> None:
    _reports(project, load_images(project), **change)
    _refused(project, capsys, "validate", words, "unvalidated")


@pytest.mark.parametrize("change, words", [
    ({"verify": {"alpha": {"ok": False, "identical": False}}}, "task 'alpha' failed verify"),
    ({"verify": {"alpha": {"ok": False, "recorded": {"matches": False}}}},
     "task 'alpha' failed verify"),
    ({"verify": {"alpha": {"ok": None}}}, "task 'alpha' failed verify"),  # no verdict
    ({"verify": {"alpha": {"digest_a": fake_digest("other")}}},
     "task 'alpha': .gen/verify/report.json is for image sha256:"),
])
def test_reproducibility_must_cover_the_released_images(project: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         change: dict[str, Any],
                                                         words: str) -> None:
    _reports(project, load_images(project), **change)
    _refused(project, capsys, "verify", words, "unverified")


def test_a_verify_report_without_verdicts_is_from_an_older_gen(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report_file = project / ".gen" / "verify" / "report.json"
    report = json.loads(report_file.read_text())
    for entry in report["tasks"].values():
        del entry["ok"]  # identical, recorded image matching: passed, but said the old way
    report_file.write_text(json.dumps(report))
    _refused(project, capsys, "verify", "gives no verdict ('ok') for it: the report is from "
             "an older gen", "unverified")


def test_missing_reports_and_allow_all(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".gen" / "verify" / "report.json").unlink()
    _refused(project, capsys, "verify", "no .gen/verify/report.json: the images were not "
             "verified", "unverified")
    # --allow all skips every check, even on a directory that is no spec project
    (project / "tasks" / "alpha" / "task.spec.yaml").write_text("kind: [broken\n")
    assert _release(project, capsys)[0] == 2
    code, out = _release(project, capsys, "--allow", "all")
    assert code == 0 and "checked  nothing (waived: lock, render, images, validate, verify)" in out


def test_dry_run_checks_and_writes_nothing(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["release", "--project", str(project), "--dry-run", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["dry_run"] is True and data["checks"]["ok"] is True
    assert data["images"] == 2 and data["reports"] == ["validate", "verify"]
    assert not (project.parent / "rel").exists()
    (project / ".gen" / "validate" / "report.json").unlink()
    assert main(["release", "--project", str(project), "--dry-run"]) == 1
    assert "no .gen/validate/report.json" in capsys.readouterr().err
    assert main(["release", "--project", str(project), "--dry-run", "--allow",
                 "unvalidated"]) == 0
    assert "checked lock, render, images, verify (waived: validate)" in capsys.readouterr().out
    assert main(["release", "--project", str(project), "--sign", "none"]) == 2
    assert "needs --out DIR" in capsys.readouterr().err
