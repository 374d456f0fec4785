"""Load SWE-bench instances with swebench 5.0.2's own harness code.

Run with the swebench venv's python (scripts/consumers.py setup swebench):

    .gen/venvs/swebench/bin/python tests/consumers/swebench_load.py INSTANCES.jsonl

* `swebench.harness.utils.load_swebench_dataset(path)`: what `swebench eval PATH` reads
  (.json list, .jsonl one object per line, or .parquet). A failure here (a blank line in a
  .jsonl, say) rejects the whole file.
* `swebench.harness.utils.make_test_spec(instance)` for every instance.
* What 5.0.2 only finds out at grading time, after the container ran: `log_parser` is a
  key of `swebench.harness.log_parsers.PARSER_REGISTRY`, `eval_type` is an `EvalType`, the
  eval script has both `>>>>> Start/End Test Output` markers, FAIL_TO_PASS is not empty,
  `patch` (the --gold prediction) is there, and instance ids are unique (predictions are
  keyed by instance_id, so duplicates collapse silently).

With --task-repo DIR, also the task repo next to the instances (the 5.x source-of-truth
layout): `swebench.task.checks.check_task_repo(DIR)` (= `swebench dataset check DIR`; every
error rejects), `load_task_repo(DIR)` (which skips folders without task.yaml silently: every
instance must come back from it), and the repo's instances must agree with the .jsonl on
everything the harness reads.

Prints JSON: {"path", "swebench", "loaded": [ids], "rejected": [{"task", "error"}]}.
Exit status: 0 all loaded; 1 any rejection; 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from swebench.harness.constants import END_TEST_OUTPUT, START_TEST_OUTPUT, EvalType
from swebench.harness.log_parsers import PARSER_REGISTRY
from swebench.harness.utils import load_swebench_dataset, make_test_spec


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def check_instance(instance: dict[str, Any]) -> None:
    spec = make_test_spec(instance)
    problems = []
    if spec.log_parser not in PARSER_REGISTRY:
        problems.append(f"log_parser {spec.log_parser!r} is not in PARSER_REGISTRY")
    if spec.eval_type not in {e.value for e in EvalType}:
        problems.append(f"eval_type {spec.eval_type!r} is not one of "
                        f"{sorted(e.value for e in EvalType)}")
    for marker in (START_TEST_OUTPUT, END_TEST_OUTPUT):
        if marker not in instance["eval_script"]:
            problems.append(f"eval_script lacks the {marker!r} marker")
    if not spec.FAIL_TO_PASS:
        problems.append("FAIL_TO_PASS is empty")
    if not instance.get("patch"):
        problems.append("no 'patch' (the gold prediction `swebench eval --gold` applies)")
    if problems:
        raise ValueError("; ".join(problems))


# what make_test_spec / grading / --gold read from an instance
HARNESS_FIELDS = ("image", "eval_script", "repo", "version", "log_parser", "eval_type", "patch")


def _tests(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def check_task_repo_against(repo: Path, instances: list[dict[str, Any]],
                            report: dict[str, Any]) -> None:
    from swebench.task.checks import check_task_repo, errors
    from swebench.task.repo import load_task_repo

    for problem in errors(check_task_repo(repo)):
        report["rejected"].append({"task": f"<task-repo> {problem.where}",
                                   "error": f"swebench dataset check: {problem.message}"})
    try:
        repo_rows = {r["instance_id"]: r for r in load_task_repo(repo)}
    except Exception as e:
        report["rejected"].append({"task": "<task-repo>", "error": _error_text(e)})
        return
    for instance in instances:
        iid = instance.get("instance_id")
        row = repo_rows.pop(iid, None)
        if row is None:
            report["rejected"].append({"task": str(iid), "error": "not in the task repo "
                                       "(load_task_repo skipped it or it is missing)"})
            continue
        diff = [k for k in HARNESS_FIELDS if row.get(k) != instance.get(k)]
        diff += [k for k in ("FAIL_TO_PASS", "PASS_TO_PASS")
                 if _tests(row.get(k)) != _tests(instance.get(k))]
        if diff:
            report["rejected"].append({"task": str(iid), "error": "the task repo and the "
                                       f"instances file disagree on {', '.join(diff)}"})
    for iid in sorted(repo_rows):
        report["rejected"].append({"task": str(iid), "error": "in the task repo but not in "
                                   "the instances file"})


def load(path: Path, task_repo: Path | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "path": str(path),
        "swebench": importlib.metadata.version("swebench"),
        "loaded": [],
        "rejected": [],
    }
    try:
        instances = load_swebench_dataset(str(path))
    except Exception as e:
        report["rejected"].append({"task": "<file>", "error": _error_text(e)})
        return report
    seen: dict[str, int] = {}
    for i, instance in enumerate(instances):
        iid = str(instance.get("instance_id", f"<instance #{i}>"))
        try:
            if iid in seen:
                raise ValueError(f"instance #{i} repeats the instance_id of instance "
                                 f"#{seen[iid]} (predictions are keyed by instance_id)")
            seen[iid] = i
            check_instance(dict(instance))
        except Exception as e:
            report["rejected"].append({"task": iid, "error": _error_text(e)})
        else:
            report["loaded"].append(iid)
    if task_repo is not None:
        check_task_repo_against(task_repo, [dict(i) for i in instances], report)
        bad = {r["task"] for r in report["rejected"]}
        report["loaded"] = [i for i in report["loaded"] if i not in bad]
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", type=Path, help="instances .jsonl / .json / .parquet")
    ap.add_argument("--task-repo", type=Path, metavar="DIR",
                    help="also check the task repo (sweb.yaml, tasks/<id>/) against them")
    args = ap.parse_args(argv)
    if not args.instances.is_file():
        print(f"swebench_load: {args.instances} is not a file", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr):
            report = load(args.instances, args.task_repo)
    except Exception:
        traceback.print_exc()
        return 2
    print(json.dumps(report, indent=2))
    return 1 if report["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
