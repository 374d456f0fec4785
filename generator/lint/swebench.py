"""SWE-bench 5.0.2's rules: each instance row's fields, test lists, log parser and eval type as the
swebench harness reads them, the image name it expects for an instance, and a task repo's files
(task.yaml, tests.json, the Dockerfile, the gold and test patches, eval.sh with its markers)."""

from __future__ import annotations

import json
import re
from typing import Any

from generator.core.errors import LintError
from generator.lint.common import FileMap, _text, _unknown, _yaml_doc

__all__ = [
    "SWEBENCH_EVAL_TYPES", "SWEBENCH_INSTANCE_FIELDS", "SWEBENCH_PARSERS", "SWEBENCH_REQUIRED",
    "expected_swebench_image", "lint_swebench_instances", "lint_swebench_task_repo",
]


SWEBENCH_INSTANCE_FIELDS: dict[str, str] = {
    # SWEbenchInstance (swebench.types)
    "repo": "str", "instance_id": "str", "base_commit": "str", "patch": "str",
    "test_patch": "str", "problem_statement": "str", "hints_text": "str",
    "created_at": "str", "version": "str", "FAIL_TO_PASS": "tests",
    "PASS_TO_PASS": "tests", "environment_setup_commit": "str",
    # what 5.0.2's harness reads from each instance
    "image": "str", "eval_script": "str", "log_parser": "str", "eval_type": "str",
    "image_assets": "any",
}


SWEBENCH_REQUIRED = ("instance_id", "repo", "version", "base_commit", "problem_statement",
                     "patch", "test_patch", "FAIL_TO_PASS", "PASS_TO_PASS",
                     "environment_setup_commit", "image", "eval_script", "log_parser",
                     "eval_type")


SWEBENCH_PARSERS = ("parse_log_pytest", "parse_log_pytest_options", "parse_log_pytest_v2",
                    "parse_log_django", "parse_log_sympy", "parse_log_seaborn",
                    "parse_log_matplotlib")


SWEBENCH_EVAL_TYPES = ("pass_and_fail", "fail_only")


_MARKERS = (">>>>> Start Test Output", ">>>>> End Test Output")


_DOCKER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*\Z")


def expected_swebench_image(instance_id: str, namespace: str = "swebench") -> str:
    """The image name swebench derives for an instance (`swebench.task.checks.expected_image`,
    `ImageSpec.name` with a namespace, amd64)."""
    key = f"sweb.eval.x86_64.{instance_id}:latest".lower()
    return f"{namespace}/{key}".replace("__", "_1776_")


def _tests_list(value: Any) -> list[Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return value
    return None


def lint_swebench_instances(rows: list[dict[str, Any]], *,
                            where: str = "instances.jsonl") -> None:
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        iid = str(row.get("instance_id", f"#{i}"))
        shown = f"{where}:{i + 1}"
        for key in row:
            if key not in SWEBENCH_INSTANCE_FIELDS:
                raise _unknown(key, SWEBENCH_INSTANCE_FIELDS, "swebench", shown,
                               f"{iid}.{key}")
        for key in SWEBENCH_REQUIRED:
            if key not in row:
                raise LintError(f"instance '{iid}' has no '{key}'", file=shown, field=key,
                                hint="export it again with gen")
        for key, kind in SWEBENCH_INSTANCE_FIELDS.items():
            if key not in row:
                continue
            if kind == "str" and not isinstance(row[key], str):
                raise LintError(f"'{key}' must be a string", file=shown, field=f"{iid}.{key}",
                                hint="quote it")
            if kind == "tests" and _tests_list(row[key]) is None:
                raise LintError(f"'{key}' must be a list of test ids (or its JSON)",
                                file=shown, field=f"{iid}.{key}", hint="list the tests")
        if not _DOCKER_NAME_RE.match(iid.lower()):
            raise LintError(f"instance_id '{iid}' cannot name a container "
                            f"(sweb.eval.<id>.<run>)", file=shown, field="instance_id",
                            hint="use letters, digits, '.', '_' and '-'")
        if iid in seen:
            raise LintError(f"instance_id '{iid}' repeats row {seen[iid]} (predictions are keyed "
                            "by instance_id, so one is silently lost)", file=shown,
                            field="instance_id", hint="give every task its own id")
        seen[iid] = i + 1
        if not _tests_list(row["FAIL_TO_PASS"]):
            raise LintError(f"instance '{iid}' has no FAIL_TO_PASS tests: nothing grades it",
                            file=shown, field="FAIL_TO_PASS", hint="list the failing tests")
        if row["log_parser"] not in SWEBENCH_PARSERS:
            raise LintError(f"log_parser '{row['log_parser']}' is not in swebench's "
                            "PARSER_REGISTRY (fails only at grading, after the run)",
                            file=shown, field="log_parser",
                            hint=f"use one of {', '.join(SWEBENCH_PARSERS)}")
        if row["eval_type"] not in SWEBENCH_EVAL_TYPES:
            raise LintError(f"eval_type '{row['eval_type']}' is not an EvalType (fails only at "
                            "grading)", file=shown, field="eval_type",
                            hint=f"use one of {', '.join(SWEBENCH_EVAL_TYPES)}")
        for marker in _MARKERS:
            if marker not in row["eval_script"]:
                raise LintError(f"eval_script lacks the '{marker}' marker: grading cannot read "
                                "the run", file=shown, field="eval_script",
                                hint="restore the markers in the eval.sh template")
        for key in ("patch", "test_patch"):
            if "diff --git" not in row[key]:
                raise LintError(f"'{key}' is not a git diff", file=shown, field=key,
                                hint="write the patch with `git diff`")


_TASK_REPO_FILES = ("task.yaml", "tests.json", "Dockerfile", "gold.patch", "test.patch",
                    "eval.sh", "problem_statement.md")


_TASK_REPO_KEYS = ("instance_id", "repo", "version", "base_commit", "split", "image",
                   "log_parser", "eval_type")


def lint_swebench_task_repo(files: FileMap, *, root: str = "swebench") -> None:
    """The task-repo layout (`sweb.yaml`, `tasks/<id>/...`) as `swebench dataset check`
    checks it, plus the loader's silent skip of folders without task.yaml."""
    if "sweb.yaml" not in files:
        raise LintError("sweb.yaml is missing", file=f"{root}/sweb.yaml", hint="write it")
    config = _yaml_doc(_text(files, "sweb.yaml"), f"{root}/sweb.yaml")
    datasets = set(config.get("datasets") or []) if isinstance(config, dict) else set()
    splits = set(config.get("splits") or ["test"]) if isinstance(config, dict) else set()
    if not datasets:
        raise LintError("sweb.yaml names no datasets", file=f"{root}/sweb.yaml",
                        field="datasets", hint="add datasets: [<name>]")
    task_ids = sorted({p.split("/")[1] for p in files if p.startswith("tasks/")
                       and p.count("/") >= 2})
    if not task_ids:
        raise LintError("no task directories", file=f"{root}/tasks", hint="export swe tasks")
    for tid in task_ids:
        where = f"{root}/tasks/{tid}"
        for name in _TASK_REPO_FILES:
            if f"tasks/{tid}/{name}" not in files:
                effect = "the loader skips the task" if name == "task.yaml" else \
                    "swebench dataset check fails"
                raise LintError(f"{name} is missing ({effect})", file=f"{where}/{name}",
                                hint="export it again")
        meta = _yaml_doc(_text(files, f"tasks/{tid}/task.yaml"), f"{where}/task.yaml")
        if not isinstance(meta, dict):
            raise LintError("task.yaml must be a mapping", file=f"{where}/task.yaml",
                            hint="export it again")
        for key in _TASK_REPO_KEYS:
            if key not in meta:
                raise LintError(f"task.yaml has no {key}", file=f"{where}/task.yaml", field=key,
                                hint="export it again")
        if meta["instance_id"] != tid:
            raise LintError(f"instance_id {meta['instance_id']!r} is not the folder name",
                            file=f"{where}/task.yaml", field="instance_id", hint="rename")
        if meta["image"] != expected_swebench_image(tid):
            raise LintError(f"image {meta['image']!r} is not the name swebench derives "
                            f"({expected_swebench_image(tid)})", file=f"{where}/task.yaml",
                            field="image", hint="use the derived name")
        if meta["split"] not in splits:
            raise LintError(f"split {meta['split']!r} is not in sweb.yaml",
                            file=f"{where}/task.yaml", field="split", hint="use test")
        claimed = meta.get("datasets")
        if not isinstance(claimed, list) or not claimed or set(claimed) - datasets:
            raise LintError(f"datasets {claimed!r} are not published by sweb.yaml",
                            file=f"{where}/task.yaml", field="datasets",
                            hint=f"use {sorted(datasets)}")
        try:
            tests = json.loads(_text(files, f"tasks/{tid}/tests.json"))
        except ValueError as exc:
            raise LintError(f"tests.json is not JSON: {exc}", file=f"{where}/tests.json",
                            hint="export it again") from None
        for key in ("FAIL_TO_PASS", "PASS_TO_PASS"):
            if not isinstance(tests.get(key), list):
                raise LintError(f"tests.json has no {key} list", file=f"{where}/tests.json",
                                field=key, hint="export it again")
        if not tests["FAIL_TO_PASS"]:
            raise LintError("no FAIL_TO_PASS, so nothing grades this task",
                            file=f"{where}/tests.json", field="FAIL_TO_PASS",
                            hint="list the failing tests")
        script = _text(files, f"tasks/{tid}/eval.sh")
        for marker in _MARKERS:
            if marker not in script:
                raise LintError(f"eval.sh has no '{marker}' marker", file=f"{where}/eval.sh",
                                hint="restore the markers in the eval.sh template")
        for name in ("gold.patch", "test.patch"):
            if "diff --git" not in _text(files, f"tasks/{tid}/{name}"):
                raise LintError(f"{name} does not look like a diff", file=f"{where}/{name}",
                                hint="write the patch with `git diff`")
