"""Harbor 0.25.0's rules for a task dir: task.toml against harbor.models.task.config's schema
(keys, types, the name pattern), and the files harbor run expects (instruction.md,
environment/Dockerfile, solution/solve.sh, tests/test.sh, executable)."""

from __future__ import annotations

import re
import tomllib

from generator.core.errors import LintError
from generator.lint.common import FileMap, _bytes, _mode, _text, _unknown
from generator.lock.lockfiles import DIGEST_REF_RE

__all__ = [
    "HARBOR_SCHEMA", "lint_harbor_task",
]


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
