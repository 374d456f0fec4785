"""Load a Harbor (Terminal-Bench 2.0 format) dataset or task with harbor 0.25.0's own code.

Run with the harbor venv's python (scripts/consumers.py setup harbor):

    .gen/venvs/harbor/bin/python tests/consumers/harbor_load.py PATH

PATH is a dataset folder (one task per sub-folder) or a single task folder (it has
task.toml), the same distinction `harbor run -p PATH` makes.

Per task folder:
* `harbor.models.task.task.Task(task_dir)`: task.toml through `TaskConfig`, the containment
  checks on tests/ and solution/, `_validate_tests`, instruction.md;
* `harbor.environments.definition.require_agent_environment_definition(environment_dir,
  docker_image=...)`: what `DockerEnvironment._validate_definition` checks before a run
  (an environment/ with neither a Dockerfile nor a compose file fails only there);
* solution/solve.sh exists (OracleAgent: "Solution script not found").

For a dataset also `harbor.models.job.config.DatasetConfig(path=D).get_task_configs()`, the
local loader `harbor run -p D` uses. It keeps only the entries for which `Task.is_valid_dir`
is true and drops the others WITHOUT an error; every task folder it drops is reported.

With --lint, also `harbor lint TASK_DIR` (harbor.lint.lint_task with the rules the CLI
selects: its defaults, adjusted by the task's own [metadata.harbor.lint]): every finding,
unknown-config-field included (the keys `Task()` ignores silently), rejects the task.

Prints JSON: {"path", "harbor", "loaded": [...], "rejected": [{"task", "error"}],
"dropped": [task folders DatasetConfig left out], "skipped": [entries that are not folders]}.
Exit status: 0 all loaded; 1 any rejection or dropped task; 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from harbor.environments.definition import require_agent_environment_definition
from harbor.models.job.config import DatasetConfig
from harbor.models.task.task import Task


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return re.sub(r"\n\s*For further information visit \S+", "", text)


def check_task(task_dir: Path) -> Task:
    task = Task(task_dir)
    if not task.has_steps:
        require_agent_environment_definition(
            task.paths.environment_dir, docker_image=task.config.environment.docker_image)
        if task.paths.discovered_solve_path is None:
            raise FileNotFoundError(f"no solution script ({task.paths.solve_path.name}) in "
                                    f"{task.paths.solution_dir}")
    return task


def lint_findings(task_dir: Path) -> list[str]:
    from harbor.cli.lint import _selected_rules
    from harbor.lint.models import LintConfig
    from harbor.lint.task import lint_task

    root = task_dir.resolve()
    findings = lint_task(root, selected_rules=_selected_rules(root, LintConfig()))
    return [f"[{f.rule}] {Path(f.path).relative_to(root) if Path(f.path).is_absolute() else f.path}"
            f"{':' + str(f.line) if f.line else ''}: {f.message}" for f in findings]


def load(path: Path, lint: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = {
        "path": str(path),
        "harbor": importlib.metadata.version("harbor"),
        "loaded": [],
        "rejected": [],
        "dropped": [],
        "skipped": [],
    }
    single = (path / "task.toml").exists()
    candidates = [path] if single else sorted(path.iterdir())
    for entry in candidates:
        if not entry.is_dir():
            report["skipped"].append(entry.name)  # harbor's loader ignores these too
            continue
        try:
            check_task(entry)
            if lint:
                found = lint_findings(entry)
                if found:
                    raise ValueError("harbor lint: " + "; ".join(found))
        except Exception as e:
            report["rejected"].append({"task": entry.name, "error": _error_text(e)})
        else:
            report["loaded"].append(entry.name)
    if single:
        if not Task.is_valid_dir(path):
            report["dropped"].append(path.name)
        return report
    try:
        configs = asyncio.run(DatasetConfig(path=path).get_task_configs())
    except Exception as e:
        report["rejected"].append({"task": "<dataset>", "error": _error_text(e)})
        return report
    kept = {Path(c.path).resolve().name for c in configs if c.path is not None}
    report["dropped"] = sorted(
        e.name for e in candidates if e.is_dir() and e.name not in kept)
    for name in report["dropped"]:
        if name in report["loaded"]:  # Task() accepted it but the dataset loader did not
            report["loaded"].remove(name)
            report["rejected"].append({
                "task": name,
                "error": "Task() loads it, but DatasetConfig.get_task_configs() silently drops "
                         "it (Task.is_valid_dir is false: e.g. no environment/ folder)",
            })
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="dataset folder or single task folder")
    ap.add_argument("--lint", action="store_true", help="also run `harbor lint` per task")
    args = ap.parse_args(argv)
    if not args.path.is_dir():
        print(f"harbor_load: {args.path} is not a directory", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr):
            report = load(args.path, lint=args.lint)
    except Exception:
        traceback.print_exc()
        return 2
    print(json.dumps(report, indent=2))
    return 1 if report["rejected"] or report["dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
