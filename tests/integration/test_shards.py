"""Two shard jobs of the example dataset, for real: each fetches, builds (buildah) and
validates (docker) its half in its own project copy; `gen merge-shards` joins them into a third
copy, which is then released and verified as if one machine had done it all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.image.engines.select import available_engines
from tests.integration.conftest import REPO, copy_example, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TASKS = {"csv-stats-cli", "fix-log-parser", "inflection-humanize-id-suffix"}


def _gen(*args: str) -> dict[str, object]:
    proc = run_gen(*args, "--json")
    assert proc.returncode == 0, f"gen {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_two_shards_build_validate_merge_and_release(base_image: str, gen_cas: Path,
                                                     tmp_path: Path) -> None:
    engines = available_engines(REPO / ".gen" / "build")
    for name in ("buildah", "docker"):
        need(engines.get(name) is None, f"engine {name} is not usable: {engines.get(name)}")
    shards = [copy_example(tmp_path / f"shard-{i}") for i in (1, 2)]
    digests: dict[str, str] = {}
    for i, project in enumerate(shards, start=1):
        p = str(project)
        _gen("fetch", "--project", p, "--shard", f"{i}/2")
        built = _gen("build", "--project", p, "--shard", f"{i}/2", "--engine", "buildah")
        tasks = built["tasks"]
        assert isinstance(tasks, dict)
        want = sorted(TASKS)[i - 1::2]
        assert sorted(tasks) == want, f"shard {i}/2 built {sorted(tasks)}"
        digests.update({t: rec["digest"] for t, rec in tasks.items()})
        report = _gen("validate", "--project", p, "--shard", f"{i}/2", "--runs", "1",
                      "--engine", "docker", "--strength", "--max-mutants", "3")
        assert report["ok"] is True and sorted(report["tasks"]) == want  # type: ignore[call-overload]
        strength = report["strength"]
        assert isinstance(strength, dict) and sorted(strength["tasks"]) == want
    assert set(digests) == TASKS

    merged = copy_example(tmp_path / "release")
    # a merge with one shard missing is refused, and writes nothing
    partial = run_gen("merge-shards", "--project", str(merged), str(shards[0] / ".gen"))
    assert partial.returncode == 1, partial.stdout + partial.stderr
    assert "have no image in any shard: fix-log-parser" in partial.stderr
    assert not (merged / ".gen" / "build" / "images.json").exists()

    result = _gen("merge-shards", "--project", str(merged), str(shards[0] / ".gen"),
                  str(shards[1]))
    assert result["images"] == 3 and result["reports"] == {"validate": 3, "strength": 3}
    assert result["layouts_copied"] == 3
    images = json.loads((merged / ".gen/build/images.json").read_text())["images"]
    assert {t: rec["digest"] for t, rec in images.items()} == digests
    report = json.loads((merged / ".gen/validate/report.json").read_text())
    assert report["ok"] is True and report["summary"]["valid"] == 3
    assert report["runs"] == 1 and len(report["shards"]) == 2
    strength = json.loads((merged / ".gen/validate/strength.json").read_text())
    assert strength["ok"] is True and sorted(strength["tasks"]) == sorted(TASKS)
    assert strength["max_mutants"] == 3 and len(strength["shards"]) == 2
    assert "survivor" not in (merged / ".gen/validate/strength.txt").read_text()

    # the merged project releases and verifies like a single-machine one: the release's
    # checks pass on the merged images and validate report (reproducibility was not
    # verified here: waived, and the report says so)
    out = merged / "rel"
    refused = run_gen("release", "--project", str(merged), "--sign", "none", "--out", str(out))
    assert refused.returncode == 1 and "no .gen/verify/report.json" in refused.stderr
    assert not out.exists()
    released = _gen("release", "--project", str(merged), "--sign", "none", "--out", str(out),
                    "--allow", "unverified")
    checks = released["checks"]
    assert isinstance(checks, dict)
    assert checks["ok"] is True and checks["waived"] == ["verify"] and not checks["problems"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(len(p) for p in manifest["images"].values()) == 3
    assert set(digests.values()) == {d for p in manifest["images"].values()
                                     for d in p.values()}
    verified = _gen("verify-release", str(out), "--allow-unsigned", "--dataset",
                    str(merged / "dataset"), "--check-images", "--project", str(merged))
    assert verified["verified"] is True and verified["images"] == 3
    assert "images" in verified["checked"]  # type: ignore[operator]
