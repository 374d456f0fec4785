"""Load SWE-bench instances with swebench 5.0.2's own harness code.

Run with the swebench venv's python (scripts/consumers.sh setup swebench):

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


def load(path: Path) -> dict[str, Any]:
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
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instances", type=Path, help="instances .jsonl / .json / .parquet")
    args = ap.parse_args(argv)
    if not args.instances.is_file():
        print(f"swebench_load: {args.instances} is not a file", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr):
            report = load(args.instances)
    except Exception:
        traceback.print_exc()
        return 2
    print(json.dumps(report, indent=2))
    return 1 if report["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
