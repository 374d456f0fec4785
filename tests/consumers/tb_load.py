"""Load a Terminal-Bench dataset with terminal-bench 0.2.18's own loader code.

Run with the tb venv's python (scripts/consumers.py setup tb):

    .gen/venvs/tb/bin/python tests/consumers/tb_load.py DATASET_DIR [--exclude-task-id GLOB]...

What it does, in the order `tb run --dataset-path DATASET_DIR` does it:

1. `terminal_bench.dataset.dataset.Dataset(path=DATASET_DIR, exclude_task_ids=...)`, the call
   `Harness._init_dataset` makes. It takes EVERY entry of the folder as a task (files and
   dot-entries too); a failure here rejects the whole dataset.
2. Per task, `terminal_bench.handlers.trial_handler.TrialHandler(trial_name, input_path=TASK)`
   with the trial name `Harness._get_trial_name` builds (`{task}.{attempt}-of-{n}.{run_id}`).
   That runs `Task.from_yaml(task.yaml)` (pydantic) and
   `ParserFactory.get_parser(task.parser_name)`.
3. The `TaskPaths` the harness and OracleAgent read: docker-compose.yaml, run-tests.sh and
   `solution_path` (solution.sh or solution.yaml; a solution.yaml is parsed with
   `TerminalCommand.from_yaml_list` as OracleAgent does).
4. docker-compose.yaml: some service has
   `container_name: ${T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME}` (the harness calls
   `docker.containers.get(<that name>)` after `up -d`), that service passes `TEST_DIR` into
   the container, and its `build:` context/Dockerfile exist.
5. The compose project name tb passes unsanitized (`-p <client_container_name>`) is valid
   for compose (lowercase [a-z0-9_-]), so the task id must be lowercase.
6. No two tasks share an instruction (OracleAgent keys solutions by instruction text).

Prints a JSON report on stdout:
    {"dataset": ..., "terminal_bench": "0.2.18", "loaded": [ids], "rejected":
     [{"task": id, "error": msg}], "skipped": [ids excluded by --exclude-task-id]}
Exit status: 0 all loaded; 1 any rejection, or loaded != task directories (not skipped);
2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.metadata
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

# litellm (imported by terminal_bench) otherwise fetches a price map from the network and
# retries with back-off for ~10 s when offline.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import yaml
from terminal_bench.dataset.dataset import Dataset
from terminal_bench.handlers.trial_handler import TrialHandler
from terminal_bench.terminal.models import TerminalCommand

CONTAINER_NAME_VAR = "T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME"
TEST_DIR_VAR = "T_BENCH_TEST_DIR"
# docker compose project names: lowercase letters, digits, dashes and underscores, starting
# with a letter or digit (tb passes the container name as `-p` without sanitizing it).
COMPOSE_PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Reject(Exception):
    pass


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return re.sub(r"\n\s*For further information visit \S+", "", text)


def _refs_var(value: Any, var: str) -> bool:
    return isinstance(value, str) and value.strip() in {f"${{{var}}}", f"${var}"}


def _service_env(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): (None if v is None else str(v)) for k, v in env.items()}
    out: dict[str, str | None] = {}
    for item in env:
        key, sep, value = str(item).partition("=")
        out[key] = value if sep else None
    return out


def check_compose(task_dir: Path, compose_path: Path) -> None:
    try:
        doc = yaml.safe_load(compose_path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise Reject(f"docker-compose.yaml: {_error_text(e)}") from e
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise Reject("docker-compose.yaml: no services")
    clients = [
        (name, svc)
        for name, svc in services.items()
        if isinstance(svc, dict) and _refs_var(svc.get("container_name"), CONTAINER_NAME_VAR)
    ]
    if not clients:
        raise Reject(
            f"docker-compose.yaml: no service has container_name: ${{{CONTAINER_NAME_VAR}}} "
            "(the harness looks the client container up by that name)"
        )
    name, svc = clients[0]
    env = _service_env(svc)
    if "TEST_DIR" not in env:
        raise Reject(
            f"docker-compose.yaml: service {name!r} does not pass TEST_DIR "
            f"(expected environment: [TEST_DIR=${{{TEST_DIR_VAR}}}]); the harness sets "
            "nothing inside the container itself"
        )
    value = env["TEST_DIR"]
    if value is not None and not _refs_var(value, TEST_DIR_VAR) and value != "/tests":
        raise Reject(
            f"docker-compose.yaml: service {name!r} sets TEST_DIR={value!r}, but the harness "
            f"copies the tests to ${{{TEST_DIR_VAR}}} (/tests)"
        )
    build = svc.get("build")
    if build is None:
        if not svc.get("image"):
            raise Reject(f"docker-compose.yaml: service {name!r} has neither build: nor image:")
        return
    context, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (
        build.get("context", "."), build.get("dockerfile", "Dockerfile"))
    if "$" in str(context) or "$" in str(dockerfile):
        return  # interpolated at run time; nothing to check statically
    ctx = (task_dir / str(context)).resolve()
    if not ctx.is_dir():
        raise Reject(f"docker-compose.yaml: build context {context!r} is not a directory")
    if not (ctx / str(dockerfile)).is_file():
        raise Reject(f"docker-compose.yaml: build dockerfile {context}/{dockerfile} is missing")


def check_task(task_dir: Path, trial_name: str) -> TrialHandler:
    handler = TrialHandler(trial_name=trial_name, input_path=task_dir)
    paths = handler.task_paths
    if not paths.docker_compose_path.is_file():
        raise Reject("docker-compose.yaml is missing")
    if not paths.run_tests_path.is_file():
        raise Reject("run-tests.sh is missing (the harness raises ValueError at test time)")
    solution = paths.solution_path  # FileNotFoundError if neither solution.sh nor .yaml
    if solution.suffix != ".sh":
        try:
            TerminalCommand.from_yaml_list(solution)  # what OracleAgent does with it
        except Exception as e:
            raise Reject(f"{solution.name}: {_error_text(e)}") from e
    project = handler.client_container_name
    if not COMPOSE_PROJECT_RE.match(project):
        raise Reject(
            f"compose project name {project!r} (from the task id) is invalid: tb passes it "
            "unsanitized as `docker compose -p`, which allows only lowercase [a-z0-9_-]"
        )
    check_compose(task_dir, paths.docker_compose_path)
    return handler


def load(dataset_dir: Path, exclude: list[str], run_id: str) -> dict[str, Any]:
    report: dict[str, Any] = {
        "dataset": str(dataset_dir),
        "terminal_bench": importlib.metadata.version("terminal-bench"),
        "loaded": [],
        "rejected": [],
        "skipped": [],
    }
    entries = sorted(p.name for p in dataset_dir.iterdir())
    try:
        dataset = Dataset(path=dataset_dir, exclude_task_ids=exclude)
        dataset.sort_by_duration()  # Harness.__init__ does this too (it swallows errors)
    except Exception as e:
        report["rejected"].append({"task": "<dataset>", "error": _error_text(e)})
        report["entries"] = len(entries)
        return report
    task_ids = sorted(dataset.task_ids)
    report["skipped"] = sorted(set(entries) - set(task_ids))
    n_attempts = 1
    by_instruction: dict[str, str] = {}
    for task_id in task_ids:
        trial_name = f"{task_id}.1-of-{n_attempts}.{run_id}"  # Harness._get_trial_name
        try:
            handler = check_task(dataset_dir / task_id, trial_name)
            first = by_instruction.setdefault(handler.instruction, task_id)
            if first != task_id:
                raise Reject(
                    f"same instruction as task {first!r}: OracleAgent keys solutions by "
                    "instruction text, so one of the two would run the other's solution"
                )
        except Reject as e:
            report["rejected"].append({"task": task_id, "error": str(e)})
        except Exception as e:  # whatever tb itself raises: pydantic, yaml, OS errors
            report["rejected"].append({"task": task_id, "error": _error_text(e)})
        else:
            report["loaded"].append(task_id)
    report["entries"] = len(entries)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset_dir", type=Path)
    ap.add_argument("--exclude-task-id", action="append", default=[], metavar="GLOB",
                    help="like `tb run --exclude-task-id` (reported as skipped)")
    ap.add_argument("--run-id", default=_dt.datetime.now().strftime("%Y-%m-%d__%H-%M-%S"),
                    help="run id used in trial names (tb's default format)")
    args = ap.parse_args(argv)
    if not args.dataset_dir.is_dir():
        print(f"tb_load: {args.dataset_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        # tb prints to stdout (Task.from_yaml: "Error validating task ..."); keep stdout JSON.
        with contextlib.redirect_stdout(sys.stderr):
            report = load(args.dataset_dir, args.exclude_task_id, args.run_id)
    except Exception:
        traceback.print_exc()
        return 2
    skipped = set(report["skipped"])
    dirs = [p.name for p in args.dataset_dir.iterdir() if p.is_dir() and p.name not in skipped]
    report["directories"] = len(dirs)
    # tb never drops a task silently today; guard against a version that does.
    accounted = set(report["loaded"]) | {r["task"] for r in report["rejected"]}
    missing = sorted(set(dirs) - accounted)
    dataset_failed = any(r["task"] == "<dataset>" for r in report["rejected"])
    if not dataset_failed and (missing or len(report["loaded"]) > len(dirs)):
        report["rejected"].append({
            "task": "<dataset>",
            "error": f"loaded {len(report['loaded'])} tasks but the folder has {len(dirs)} "
                     f"task directories (not skipped); never seen by tb: {missing}",
        })
    print(json.dumps(report, indent=2))
    return 1 if report["rejected"] else 0


if __name__ == "__main__":
    sys.exit(main())
