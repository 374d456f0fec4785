"""`gen validate --strength` against the real Docker engine and registry.

- The example SWE task: its gold patch changes one line, which its FAIL_TO_PASS tests run, and
  every mutant of that line is killed (hand-checked: the seven mutants of
  `word = re.sub(r"_id$", "", word)` each break `humanize("employee_id") == "Employee"` or
  the titleize test).
- The example terminal task: its solution's Python is measured through the CLI the tests run
  (a subprocess), and its mutants are run.
- A deliberately weak task (tests/data/strength/humanize-weak: the same fix, tests that only
  check a word ending in "id" keeps it) is sound but weak: four of its seven mutants survive,
  it fails the gate with them named and shown as diffs, and `gen release` refuses it unless
  `--allow weak-tests`. Strengthening its spec (the full test patch, the tests that check the
  "_id" stripping listed) kills them all and it passes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from generator.image.images import load_images, save_images
from generator.lock.fetch import fetch_project
from generator.release.preflight import CHECKS, preflight
from generator.render.pipeline import render
from tests.validate.conftest import validate_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SWE, TERMINAL, WEAK = "inflection-humanize-id-suffix", "fix-log-parser", "humanize-weak"
DATA = Path(__file__).resolve().parents[1] / "data" / "strength" / WEAK
CHANGED_LINE = 200  # inflection/__init__.py, after the gold patch: word = re.sub(r"_id$", ...)
# the seven mutants of that line (tests/unit/test_mutate.py checks their text)
ALL_SEVEN = {("constant", "word = re.sub('', \"\", word)"),
             ("constant", "word = re.sub('XX_id$XX', \"\", word)"),
             ("constant", "word = re.sub(r\"_id$\", 'XX', word)"),
             ("args", "word = re.sub('', '_id$', word)"),
             ("args", "word = re.sub('_id$', word, '')"),
             ("remove", "pass"),
             ("return", "return None")}
# the weak tests (titleize only, no PASS_TO_PASS) miss the mutants that stop stripping "_id"
WEAK_SURVIVORS = {("constant", "word = re.sub('', \"\", word)"),
                  ("constant", "word = re.sub('XX_id$XX', \"\", word)"),
                  ("constant", "word = re.sub(r\"_id$\", 'XX', word)"),
                  ("remove", "pass")}


def _strength(project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    code, report, err = validate_json(project, "--strength", *args)
    strength: dict[str, Any] = json.loads(
        (project / ".gen" / "validate" / "strength.json").read_text())
    assert report["strength"] == strength
    return code, strength, err


def _pairs(mutants: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(m["operator"], m["mutated"]) for m in mutants}


@pytest.fixture
def fetched(example: Path) -> Path:
    fetch_project(example)  # the coverage.py wheel gen lock pinned (the rest is in the store)
    return example


def test_the_example_swe_task_is_covered_and_kills_every_mutant(fetched: Path) -> None:
    code, rep, err = _strength(fetched, SWE)
    t = rep["tasks"][SWE]
    assert code == 0 and t["ok"] is True, (t["problems"], err)
    assert t["fix_coverage"] == {"covered": 1, "total": 1, "fraction": 1.0,
                                 "by": "FAIL_TO_PASS"}
    assert t["coverage_version"] == "7.18.0"  # lockfiles/tools/coverage-3.11-*.txt
    ran = t["lines"]["inflection/__init__.py"][str(CHANGED_LINE)]
    assert "test_inflection.py::test_humanize_keeps_trailing_id_of_a_word" in ran
    assert "test_inflection.py::test_titleize_keeps_trailing_id_of_a_word" in ran
    assert "test_inflection.py::test_humanize[employee_id-Employee]" in ran
    assert "test_inflection.py::test_ordinal[1-1st]" not in ran  # per test, not per run
    assert t["mutation_score"] == 1.0 and t["survivors"] == []
    assert t["mutants"] == {"generated": 7, "run": 7, "killed": 7, "survived": 0,
                            "timed_out": 0, "equivalent_suspect": 0, "not_applicable": 0}
    assert _pairs(t["mutant_results"]) == ALL_SEVEN
    for m in t["mutant_results"]:
        assert m["path"] == "inflection/__init__.py" and m["line"] == CHANGED_LINE, m
        assert m["failing_count"] >= 1, m
    # the release gate reads the report: this task passes it
    checked = preflight(fetched, allow=[w for c, w in CHECKS.items() if c != "strength"])
    assert checked.problems.get("strength", []) == [
        f"task '{t}' was not measured (run `gen validate --strength`)"
        for t in ("csv-stats-cli", "fix-log-parser")]


def test_a_terminal_task_is_measured_through_the_cli_its_tests_run(fetched: Path) -> None:
    code, rep, err = _strength(fetched, "--max-mutants", "6", TERMINAL)
    t = rep["tasks"][TERMINAL]
    assert code == 0 and t["ok"] is True, (t["problems"], err)
    # the tests run /app/parse_logs.py as a subprocess: coverage follows it there
    assert t["coverage_unmeasured"] is None
    assert t["fix_coverage"]["by"] == "all tests" and t["fix_coverage"]["total"] >= 10
    assert t["fix_coverage"]["fraction"] == 1.0
    assert set(t["lines"]) == {"app/parse_logs.py"}
    assert all(tests for tests in t["lines"]["app/parse_logs.py"].values())
    assert t["mutants"]["run"] == 6 and t["mutants"]["generated"] > 6
    assert t["mutants"]["killed"] + t["mutants"]["timed_out"] >= 5, t["mutant_results"]


def _add_weak_task(project: Path) -> None:
    shutil.copytree(DATA, project / "tasks" / WEAK, ignore=shutil.ignore_patterns("strong*"))
    locks = project / "lockfiles" / "tasks"
    shutil.copytree(locks / SWE, locks / WEAK)  # same packages, same source: the same locks
    images = load_images(project)
    images[WEAK] = images[SWE]  # and the same image (a swe image is its repo and packages)
    save_images(project, images)
    render(project)


def _strengthen(project: Path) -> None:
    spec = project / "tasks" / WEAK / "task.spec.yaml"
    text = spec.read_text()
    head = text.split("test_patch:", 1)[0]
    tail = text.split("PASS_TO_PASS: []\n", 1)[1]
    spec.write_text(head + (DATA / "strong.yaml").read_text().split("\n", 2)[2] + tail)
    shutil.copy2(DATA / "strong.test.patch", project / "tasks" / WEAK / "strong.test.patch")
    render(project)


def test_a_weak_task_fails_the_gate_until_its_tests_are_strengthened(fetched: Path) -> None:
    _add_weak_task(fetched)
    code, rep, err = _strength(fetched, WEAK)
    t = rep["tasks"][WEAK]
    assert code == 1 and t["ok"] is False, err
    assert t["fix_coverage"]["fraction"] == 1.0  # the line runs; its behaviour is unchecked
    assert t["mutants"]["killed"] == 3 and t["mutants"]["survived"] == 4, t["mutant_results"]
    assert _pairs(t["survivors"]) == WEAK_SURVIVORS
    assert t["mutation_score"] == pytest.approx(3 / 7, abs=1e-4)
    gate = [p for p in t["problems"] if "min_mutation_score" in p]
    assert len(gate) == 1 and "4 surviving mutant(s)" in gate[0], t["problems"]
    for s in t["survivors"]:
        assert s["id"] in gate[0] or len(t["survivors"]) > 5
        # shown as a diff that applies on the gold patch, with where to add the assertion
        assert s["diff"].startswith("diff --git a/inflection/__init__.py b/inflection/")
        assert "-    word = re.sub(r\"_id$\", \"\", word)" in s["diff"]
        w = s["where"]
        assert (w["file"], w["line"]) == ("inflection/__init__.py", CHANGED_LINE)
        assert w["fix_tests_running_line"] == [
            "test_inflection.py::test_titleize_keeps_trailing_id_of_a_word"]
        assert w["must_fail"] == "cd /testbed && pytest -rA test_inflection.py"
        # the test that tells it apart is already in the file, but not graded
        assert "test_inflection.py::test_humanize[employee_id-Employee]" in \
            s["ungraded_tests_failing"], s
    text = (fetched / ".gen" / "validate" / "strength.txt").read_text()
    assert f"FAILED  {WEAK} [swe]" in text and text.count("    survivor ") == 4
    # gen release refuses it, unless waived
    others = [w for c, w in CHECKS.items() if c != "strength"]
    checked = preflight(fetched, allow=others)
    assert any(p.startswith(f"task '{WEAK}' has weak tests: mutation score 0.43")
               for p in checked.problems["strength"]), checked.problems
    waived = preflight(fetched, allow=[*others, "weak-tests"])
    assert waived.ok and "strength" in waived.waived

    _strengthen(fetched)
    code, rep, err = _strength(fetched, WEAK)
    t = rep["tasks"][WEAK]
    assert code == 0 and t["ok"] is True, (t["problems"], err)
    assert t["mutation_score"] == 1.0 and t["survivors"] == []
    assert t["mutants"]["killed"] == 7
    checked = preflight(fetched, allow=others)
    assert not any(WEAK in p for p in checked.problems.get("strength", [])), checked.problems


def test_without_coverage_the_report_says_why_and_the_mutants_still_run(example: Path) -> None:
    """No gen.yaml `strength:` section: coverage.py is not locked, so no number is given for
    coverage, and the mutants (made from the fixed file, read from the container) still run."""
    text = (example / "gen.yaml").read_text()
    (example / "gen.yaml").write_text(text.split("strength:")[0] + "defaults:"
                                      + text.split("defaults:", 1)[1])
    shutil.rmtree(example / "lockfiles" / "tools")
    code, rep, err = _strength(example, SWE)
    t = rep["tasks"][SWE]
    assert code == 0 and t["ok"] is True, (t["problems"], err)  # no thresholds, no gate
    assert t["fix_coverage"] is None and t["lines"] == {}
    assert "gen.yaml has no 'strength:' section" in t["coverage_unmeasured"]
    assert t["mutants"]["killed"] == 7 and _pairs(t["mutant_results"]) == ALL_SEVEN
    assert rep["thresholds"] is None
