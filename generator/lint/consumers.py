"""Lints for what the downstream consumers accept *silently* but get wrong.

terminal-bench 0.2.18, harbor 0.25.0 and swebench 5.0.2 (see BUILD.md / the consumers
reference) load their inputs with models that ignore unknown keys, and their dataset loaders
skip (harbor) or mis-handle (tb, swebench) tasks instead of failing. A misspelled
`max_test_timeout_sec` or `[verifer]` loads fine and runs with the default; a harbor task
without tests/test.sh simply disappears from the dataset. gen refuses all of these at
render/export time: every function here raises `LintError` (exit 2) with one line naming the
file, the field and the fix.

The schemas below are those of the pinned consumer versions; the consumer tests
(tests/consumers/) load gen's output with the consumers' own code and would catch drift.

Entry points:
    lint_tb_task(task_id, files)          one Terminal-Bench task dir (render output)
    lint_tb_dataset(tasks)                every task + dataset-wide checks (instructions)
    lint_harbor_task(task_id, files)      one Harbor task dir
    lint_swebench_instances(rows)         SWE-bench instances (the .jsonl rows)
    lint_swebench_task_repo(files)        the task-repo layout `swebench dataset check` reads
`files` map paths relative to the task dir (or export root) to bytes, or to objects with a
`.data` bytes attribute and a `.mode` (gen's RenderedFile).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import yaml

from generator.core.errors import LintError
from generator.lock.lockfiles import DIGEST_REF_RE

__all__ = [
    "HARBOR_SCHEMA",
    "SWEBENCH_INSTANCE_FIELDS",
    "TB_TASK_FIELDS",
    "expected_swebench_image",
    "lint_harbor_task",
    "lint_swebench_instances",
    "lint_swebench_task_repo",
    "lint_tb_dataset",
    "lint_tb_task",
]


class _HasData(Protocol):
    @property
    def data(self) -> bytes: ...

    @property
    def mode(self) -> int: ...


FileMap = Mapping[str, "bytes | _HasData"]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _bytes(value: bytes | _HasData) -> bytes:
    return value if isinstance(value, bytes) else value.data


def _mode(value: bytes | _HasData) -> int | None:
    return None if isinstance(value, bytes) else value.mode


def _text(files: FileMap, name: str) -> str:
    return _bytes(files[name]).decode("utf-8")


def _unknown(key: str, allowed: Iterable[str], consumer: str, where: str, field: str,
             ) -> LintError:
    names = sorted(allowed)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"rename it to '{close[0]}'" if close else \
        f"remove it; allowed keys here: {', '.join(names)}"
    return LintError(f"unknown key '{key}': {consumer} ignores it silently", file=where,
                     field=field, hint=hint)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------
# Terminal-Bench 0.2.18
# --------------------------------------------------------------------------------------

TB_DIFFICULTIES = ("easy", "medium", "hard", "unknown")
TB_PARSERS = ("pytest", "swebench", "swelancer", "mlebench", "sweperf")
# terminal_bench.handlers.trial_handler.Task: field -> kind
TB_TASK_FIELDS: dict[str, str] = {
    "instruction": "str",
    "author_name": "str",
    "author_email": "str",
    "difficulty": "difficulty",
    "category": "str",
    "tags": "str_list",
    "parser_name": "parser",
    "max_agent_timeout_sec": "positive",
    "max_test_timeout_sec": "positive",
    "run_tests_in_same_shell": "bool",
    "disable_asciinema": "bool",
    "estimated_duration_sec": "number_or_null",
    "expert_time_estimate_min": "int_or_null",
    "junior_time_estimate_min": "int_or_null",
}
TB_REQUIRED = ("instruction", "difficulty")
# tb passes the container name as `docker compose -p` without sanitizing it
_TB_TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*\Z")
_CONTAINER_VAR = "T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME"
_TEST_DIR_VAR = "T_BENCH_TEST_DIR"


def _check_tb_field(key: str, value: Any, kind: str, where: str) -> None:
    def bad(want: str, fix: str) -> LintError:
        return LintError(f"must be {want}, got {value!r}", file=where, field=key, hint=fix)

    if kind == "str" and not isinstance(value, str):
        raise bad("a string", f"quote the value of '{key}'")
    if kind == "difficulty" and value not in TB_DIFFICULTIES:
        raise bad(f"one of {', '.join(TB_DIFFICULTIES)}", "set difficulty in the task spec")
    if kind == "parser" and value not in TB_PARSERS:
        raise bad(f"one of {', '.join(TB_PARSERS)}", "use parser_name: pytest")
    if kind == "positive" and not (_is_number(value) and value > 0):
        raise bad("a positive number", f"write '{key}' as seconds, e.g. 120")
    if kind == "bool" and not isinstance(value, bool):
        raise bad("true or false", f"write '{key}: true' or '{key}: false'")
    if kind == "number_or_null" and value is not None and not _is_number(value):
        raise bad("a number or null", f"write '{key}' as seconds")
    if kind == "int_or_null" and value is not None and \
            (isinstance(value, bool) or not isinstance(value, int)):
        raise bad("an integer or null", f"write '{key}' as whole minutes")
    if kind == "str_list" and not (isinstance(value, list)
                                   and all(isinstance(v, str) for v in value)):
        raise bad("a list of strings", f"write '{key}' as [a, b]")


def _yaml_doc(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LintError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=where,
                        line=mark.line + 1 if mark else None,
                        hint="fix the template that writes it") from None


def _lint_tb_task_yaml(text: str, where: str) -> dict[str, Any]:
    doc = _yaml_doc(text, where)
    if not isinstance(doc, dict):
        raise LintError("task.yaml must be a mapping", file=where,
                        hint="fix the task.yaml template")
    for key in doc:
        if key not in TB_TASK_FIELDS:
            raise _unknown(str(key), TB_TASK_FIELDS, "terminal-bench", where, str(key))
    for key in TB_REQUIRED:
        if key not in doc or doc[key] is None:
            raise LintError(f"missing required field '{key}' (terminal-bench rejects the task)",
                            file=where, field=key, hint=f"emit '{key}:' in task.yaml")
    for key, value in doc.items():
        if value is None and not TB_TASK_FIELDS[key].endswith("_or_null"):
            raise LintError(f"'{key}' is null", file=where, field=key,
                            hint=f"give '{key}' a value or leave it out")
        _check_tb_field(key, value, TB_TASK_FIELDS[key], where)
    if not str(doc["instruction"]).strip():
        raise LintError("the instruction is empty", file=where, field="instruction",
                        hint="write the instruction in the task spec")
    return doc


def _refs(value: Any, var: str) -> bool:
    return isinstance(value, str) and value.strip() in {f"${{{var}}}", f"${var}"}


def _lint_tb_compose(files: FileMap, where: str) -> None:
    doc = _yaml_doc(_text(files, "docker-compose.yaml"), where)
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise LintError("no services", file=where, field="services",
                        hint="fix the docker-compose.yaml template")
    clients = [(n, s) for n, s in services.items()
               if isinstance(s, dict) and _refs(s.get("container_name"), _CONTAINER_VAR)]
    if not clients:
        raise LintError(f"no service has container_name: ${{{_CONTAINER_VAR}}} (the harness "
                        "looks the client container up by that name)", file=where,
                        field="services.*.container_name",
                        hint=f"set container_name: ${{{_CONTAINER_VAR}}} on the client service")
    name, svc = clients[0]
    env = svc.get("environment") or {}
    pairs: dict[str, str | None] = {}
    if isinstance(env, dict):
        pairs = {str(k): None if v is None else str(v) for k, v in env.items()}
    elif isinstance(env, list):
        for item in env:
            k, sep, v = str(item).partition("=")
            pairs[k] = v if sep else None
    value = pairs.get("TEST_DIR", "<absent>")
    if value == "<absent>" or not (value is None or value == "/tests"
                                   or _refs(value, _TEST_DIR_VAR)):
        raise LintError(f"service '{name}' does not pass TEST_DIR=${{{_TEST_DIR_VAR}}} into the "
                        "container (the harness sets nothing inside it)", file=where,
                        field=f"services.{name}.environment",
                        hint=f"add 'TEST_DIR=${{{_TEST_DIR_VAR}}}' to its environment")
    build = svc.get("build")
    if build is None:
        if not svc.get("image"):
            raise LintError(f"service '{name}' has neither build: nor image:", file=where,
                            field=f"services.{name}", hint="add build: or image:")
        return
    context, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (
        str(build.get("context", ".")), str(build.get("dockerfile", "Dockerfile")))
    if "$" in context or "$" in dockerfile:
        return
    prefix = "" if context.strip("./") == "" else context.strip("/").removeprefix("./") + "/"
    if f"{prefix}{dockerfile}" not in files:
        raise LintError(f"the build Dockerfile '{prefix}{dockerfile}' is missing", file=where,
                        field=f"services.{name}.build", hint="render the Dockerfile")


def lint_tb_task(task_id: str, files: FileMap, *, root: str = "dataset") -> dict[str, Any]:
    """One Terminal-Bench task directory; returns its parsed task.yaml."""
    where = f"{root}/{task_id}"
    if not _TB_TASK_ID_RE.match(task_id):
        raise LintError(f"task id '{task_id}' is not a valid compose project name (tb passes "
                        "it unsanitized to `docker compose -p`)", file=where,
                        field="<task id>", hint="use lowercase letters, digits, '.', '_', '-'")
    for name in ("task.yaml", "docker-compose.yaml", "run-tests.sh"):
        if name not in files:
            raise LintError(f"{name} is missing (terminal-bench cannot run the task)",
                            file=f"{where}/{name}", hint=f"render {name}")
    if "solution.sh" not in files and "solution.yaml" not in files:
        raise LintError("no solution.sh or solution.yaml (OracleAgent fails)",
                        file=f"{where}/solution.sh", hint="add a solution to the task spec")
    for script in ("run-tests.sh", "solution.sh"):
        mode = _mode(files[script]) if script in files else None
        if mode is not None and not mode & 0o100:
            raise LintError(f"{script} is not executable", file=f"{where}/{script}",
                            hint="render scripts with mode 0755")
    doc = _lint_tb_task_yaml(_text(files, "task.yaml"), f"{where}/task.yaml")
    _lint_tb_compose(files, f"{where}/docker-compose.yaml")
    if doc.get("parser_name", "pytest") == "pytest":
        tests = _text(files, "run-tests.sh")
        if "pytest" in tests and "-rA" not in tests:
            raise LintError("run-tests.sh runs pytest without -rA: tb's PytestParser needs the "
                            "short test summary, or the run is a parse error",
                            file=f"{where}/run-tests.sh", hint="add -rA to the pytest command")
    return doc


def lint_tb_dataset(tasks: Mapping[str, FileMap], *, root: str = "dataset") -> None:
    """Every task, then what tb gets wrong across tasks: OracleAgent keys solutions by
    instruction text, so two tasks with one instruction silently share a solution."""
    seen: dict[str, str] = {}
    for task_id in sorted(tasks):
        doc = lint_tb_task(task_id, tasks[task_id], root=root)
        instruction = str(doc["instruction"])
        first = seen.setdefault(instruction, task_id)
        if first != task_id:
            raise LintError(f"task '{task_id}' has the same instruction as task '{first}': "
                            "terminal-bench's OracleAgent keys solutions by instruction, so one "
                            "would run the other's solution", file=f"{root}/{task_id}/task.yaml",
                            field="instruction", hint="make the instructions differ")


# --------------------------------------------------------------------------------------
# Harbor 0.25.0
# --------------------------------------------------------------------------------------

_ENVIRONMENT_KEYS = frozenset({
    "allow_internet", "allowed_hosts", "build_timeout_sec", "cpus", "docker_image", "env",
    "gpu_types", "gpus", "healthcheck", "mcp_servers", "memory_mb", "network_mode", "os",
    "skills_dir", "storage_mb", "tpu", "workdir", "memory", "storage"})
# harbor.models.task.config: section -> keys (None: free-form)
HARBOR_SCHEMA: dict[str, frozenset[str] | None] = {
    "": frozenset({"schema_version", "version", "task", "metadata", "verifier", "agent",
                   "environment", "solution", "source", "multi_step_reward_strategy",
                   "steps", "artifacts"}),
    "task": frozenset({"name", "version", "description", "authors", "keywords"}),
    "metadata": None,
    "verifier": frozenset({"timeout_sec", "env", "user", "environment_mode", "environment",
                           "collect", "network_mode", "allowed_hosts"}),
    "agent": frozenset({"timeout_sec", "user", "network_mode", "allowed_hosts"}),
    "environment": _ENVIRONMENT_KEYS,
    "solution": frozenset({"env"}),
}
_HARBOR_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*/[a-zA-Z0-9][a-zA-Z0-9._-]*\Z")


def lint_harbor_task(task_id: str, files: FileMap, *, root: str = "harbor") -> None:
    """One Harbor task directory: what `Task()` rejects, what the dataset loader drops
    without a word (`Task.is_valid_dir`), and what both ignore (unknown keys)."""
    where = f"{root}/{task_id}"
    shown = f"{where}/task.toml"
    if "task.toml" not in files:
        raise LintError("task.toml is missing (harbor's loader skips the folder)", file=shown,
                        hint="write task.toml")
    try:
        doc = tomllib.loads(_text(files, "task.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise LintError(f"invalid TOML: {exc}", file=shown,
                        hint="fix the task.toml writer") from None
    for section, allowed in HARBOR_SCHEMA.items():
        table = doc if section == "" else doc.get(section, {})
        if not isinstance(table, dict):
            raise LintError(f"[{section}] must be a table", file=shown, field=section,
                            hint=f"write [{section}] as a TOML table")
        if allowed is None:
            continue
        for key in table:
            if key not in allowed:
                field = f"{section}.{key}" if section else key
                raise _unknown(key, allowed, "harbor", shown, field)
    env = doc.get("environment", {})
    if isinstance(env.get("docker_image"), str) and \
            not DIGEST_REF_RE.search(env["docker_image"]):
        raise LintError(f"docker_image '{env['docker_image']}' is not pinned by digest",
                        file=shown, field="environment.docker_image",
                        hint="name the image as repository@sha256:<digest> (run `gen build`)")
    task = doc.get("task")
    if task is not None:
        name = task.get("name")
        if not isinstance(name, str) or not _HARBOR_NAME_RE.match(name) or ".." in name:
            raise LintError(f"[task].name {name!r} is not 'org/name' (harbor rejects the task)",
                            file=shown, field="task.name",
                            hint="name it '<dataset>/<task id>'")
    mode = doc.get("verifier", {}).get("environment_mode")
    if mode not in (None, "shared", "separate"):
        raise LintError(f"verifier.environment_mode {mode!r} is not shared or separate",
                        file=shown, field="verifier.environment_mode", hint="use shared")
    instruction = files.get("instruction.md")
    if instruction is None or not _bytes(instruction).decode("utf-8").strip():
        raise LintError("instruction.md is missing or empty", file=f"{where}/instruction.md",
                        hint="write the task's instruction")
    if not env.get("docker_image") and not any(
            p in files for p in ("environment/Dockerfile", "environment/docker-compose.yaml")):
        raise LintError("no environment: neither [environment].docker_image nor "
                        "environment/Dockerfile (harbor fails only when the run starts)",
                        file=f"{where}/environment", hint="run `gen build` and export again")
    if not any(p.startswith("environment/") for p in files):
        raise LintError("no environment/ folder: harbor's dataset loader skips the task "
                        "silently", file=f"{where}/environment",
                        hint="write environment/Dockerfile")
    for script in ("tests/test.sh", "solution/solve.sh"):
        if script not in files:
            effect = "drops the task silently" if "test" in script else "cannot run the oracle"
            raise LintError(f"{script} is missing (harbor {effect})",
                            file=f"{where}/{script}", hint=f"write {script}")
        mode = _mode(files[script])
        if mode is not None and not mode & 0o100:
            raise LintError(f"{script} is not executable", file=f"{where}/{script}",
                            hint="write it with mode 0755")
    test_sh = _text(files, "tests/test.sh")
    if "/logs/verifier/reward.txt" not in test_sh and "/logs/verifier/reward.json" not in test_sh:
        raise LintError("tests/test.sh never writes /logs/verifier/reward.txt (harbor raises "
                        "RewardFileNotFoundError)", file=f"{where}/tests/test.sh",
                        hint="write 1 or 0 to /logs/verifier/reward.txt")


# --------------------------------------------------------------------------------------
# SWE-bench 5.0.2
# --------------------------------------------------------------------------------------

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
