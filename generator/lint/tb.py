"""Terminal-Bench 0.2.18's rules for a task dir, checked at render and export time: task.yaml's
fields and types as terminal_bench.handlers.trial_handler.Task reads them, task ids docker
compose -p takes, and the compose file's client service with the variables tb sets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from generator.core.errors import LintError
from generator.lint.common import FileMap, _is_number, _mode, _text, _unknown, _yaml_doc

__all__ = [
    "TB_DIFFICULTIES", "TB_PARSERS", "TB_REQUIRED", "TB_TASK_FIELDS", "lint_tb_dataset",
    "lint_tb_task",
]


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
