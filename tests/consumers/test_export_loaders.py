"""The harbor and swebench loaders (harbor_load.py, swebench_load.py) work.

These tests prove each loader on tiny hand-written samples (one good, and broken ones it
must report). Real `gen export` output is loaded in test_export_consumers.py and evaluated
end to end in test_swebench_eval.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.consumers


def test_harbor_loader_accepts_a_task_and_a_dataset(tmp_path: Path, consumers: Any) -> None:
    ds = tmp_path / "harbor"
    consumers.write_files(ds / "hello", consumers.harbor_task_files())
    (ds / "README.md").write_text("not a task: harbor's loader ignores files\n")

    res = consumers.run_loader("harbor", ds)
    assert res.returncode == 0, res.explain()
    assert res.report["loaded"] == ["hello"], res.explain()
    assert res.report["dropped"] == [] and res.report["skipped"] == ["README.md"]
    assert res.report["harbor"] == "0.25.0"

    single = consumers.run_loader("harbor", ds / "hello")  # `harbor run -p TASK_DIR`
    assert single.returncode == 0, single.explain()
    assert single.report["loaded"] == ["hello"]


def test_harbor_loader_reports_silently_dropped_tasks(tmp_path: Path, consumers: Any) -> None:
    ds = tmp_path / "harbor"
    consumers.write_files(ds / "good", consumers.harbor_task_files())
    broken = {
        # DatasetConfig drops these without a word (Task.is_valid_dir is false)
        "no-tests": lambda t: [(t / "tests" / f).unlink() for f in ("test.sh", "Dockerfile")],
        "no-environment": lambda t: shutil.rmtree(t / "environment"),
        # loads, but fails later (DockerEnvironment._validate_definition / OracleAgent)
        "empty-environment": lambda t: (t / "environment" / "Dockerfile").unlink(),
        "no-solution": lambda t: (t / "solution" / "solve.sh").unlink(),
    }
    for name, breakit in broken.items():
        consumers.write_files(ds / name, consumers.harbor_task_files(name=f"gen/{name}"))
        breakit(ds / name)  # type: ignore[no-untyped-call]

    res = consumers.run_loader("harbor", ds)

    assert res.returncode == 1, res.explain()
    assert res.report["loaded"] == ["good"], res.explain()
    assert set(res.rejected) == set(broken), res.explain()
    assert res.report["dropped"] == ["no-environment", "no-tests"], res.explain()
    assert "tests/test.sh" in res.rejected["no-tests"]
    assert "no environment definition" in res.rejected["empty-environment"]


def test_swebench_loader_accepts_instances(tmp_path: Path, consumers: Any) -> None:
    path = consumers.write_jsonl(tmp_path / "instances.jsonl", [
        consumers.swebench_instance(),
        consumers.swebench_instance(instance_id="demo__calc-2", FAIL_TO_PASS=["t::a"],
                                    PASS_TO_PASS=[]),  # lists work as well as JSON strings
    ])

    res = consumers.run_loader("swebench", path)

    assert res.returncode == 0, res.explain()
    assert res.report["loaded"] == ["demo__calc-1", "demo__calc-2"], res.explain()
    assert res.report["swebench"] == "5.0.2"


def test_swebench_loader_reports_errors(tmp_path: Path, consumers: Any) -> None:
    path = consumers.write_jsonl(tmp_path / "instances.jsonl", [
        consumers.swebench_instance(),
        consumers.swebench_instance(),  # duplicate id
        consumers.swebench_instance(instance_id="demo__bad-1", log_parser="parse_log_nope",
                                    eval_type="sometimes"),
        consumers.swebench_instance(instance_id="demo__bad-2", eval_script="pytest\n"),
        {k: v for k, v in consumers.swebench_instance(instance_id="demo__bad-3").items()
         if k != "image"},
    ])
    res = consumers.run_loader("swebench", path)

    assert res.returncode == 1, res.explain()
    assert res.report["loaded"] == ["demo__calc-1"], res.explain()
    errors = [r["error"] for r in res.report["rejected"]]
    assert len(errors) == 4, res.explain()
    assert "repeats the instance_id" in errors[0]
    assert "PARSER_REGISTRY" in errors[1] and "eval_type" in errors[1]
    assert "Start Test Output" in errors[2]
    assert "KeyError" in errors[3] and "image" in errors[3]

    # a blank line makes load_swebench_dataset reject the whole file
    path.write_text(path.read_text() + "\n")
    whole = consumers.run_loader("swebench", path)
    assert whole.returncode == 1, whole.explain()
    assert list(whole.rejected) == ["<file>"] and "JSONDecodeError" in whole.rejected["<file>"]
