"""`gen validate --tamper` against the real Docker engine: the example's sealed grading stops
every attack of the battery in every harness's way of grading, and a deliberately weakened
template (run-tests.sh as a plain `python3 -m pytest`, the defence switched off) fails with the
attacks that got through named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator.render.pipeline import render
from generator.validate.attacks import ATTACKS
from tests.integration.conftest import in_ci
from tests.validate.conftest import validate_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TERMINAL, SWE = "fix-log-parser", "inflection-humanize-id-suffix"
ALL = [a.name for a in ATTACKS]

# run-tests.sh as gen rendered it before sealed grading: the tests' own output is the verdict
WEAK_RUN_TESTS = """#!/bin/bash
# A weakened template: the test command as it is, in the agent's container, no checks.
set -u
TEST_DIR="${TEST_DIR:-/tests}"
cd {{ workdir | shquote }}
{{ test_command }}
"""


def _tamper(project: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    return validate_json(project, "--tamper", *args)


def _by_attack(task: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["attack"]: a for a in task["tamper"]}


def test_the_example_resists_the_battery(example: Path) -> None:
    code, report, err = _tamper(example, TERMINAL, SWE)
    problems = {t: v["problems"] for t, v in report["tasks"].items() if not v["ok"]}
    assert code == 0 and report["ok"] is True, (problems, err)
    for task, harnesses in ((TERMINAL, ["tb", "harbor"]), (SWE, ["tb", "harbor", "swebench"])):
        attacks = _by_attack(report["tasks"][task])
        assert sorted(attacks) == sorted(ALL)
        for name, a in attacks.items():
            if a["not_run"]:  # only without a C compiler, and never in CI
                assert name == "ld-so-preload" and not in_ci(), a
                continue
            assert a["got_through"] == [], a
            assert sorted(a["verdicts"]) == sorted(harnesses), a
            assert all(v.startswith("unresolved") for v in a["verdicts"].values()), a
        # what stopped them is named: the toolchain check catches what was planted in it
        assert "was added to the toolchain" in " ".join(attacks["pth-file"]["refused"])
        assert attacks["replace-in-place"]["refused"], attacks["replace-in-place"]
        if not attacks["ld-so-preload"]["not_run"]:
            assert "/etc/ld.so.preload was added" in attacks["ld-so-preload"]["refused"]


def test_a_weakened_template_fails_naming_the_attacks(example: Path) -> None:
    templates = example / "templates" / "terminal"
    templates.mkdir(parents=True)
    (templates / "run-tests.sh.j2").write_text(WEAK_RUN_TESTS)
    render(example)
    assert "--gen-sealed" not in (example / "dataset" / TERMINAL / "run-tests.sh").read_text()

    code, report, err = _tamper(example, TERMINAL)

    task = report["tasks"][TERMINAL]
    assert code == 1 and not task["ok"], err
    attacks = _by_attack(task)
    through = {n for n, a in attacks.items() if a["got_through"]}
    # each class that works against a plain pytest run in the agent's container
    expected = {"plugin-autoload", "sitecustomize", "pth-file", "conftest", "pytest-ini",
                "fake-on-path", "replace-in-place"}
    if not attacks["ld-so-preload"]["not_run"]:
        expected.add("ld-so-preload")
    assert expected <= through, {n: a["verdicts"] for n, a in attacks.items()}
    for name in through:
        assert f"tamper: attack {name} got through" in " ".join(task["problems"])
    # the states themselves are still sound: only the grading is fooled
    assert task["states"]["unsolved"]["summary"].startswith("2/12 pass"), task["states"]
