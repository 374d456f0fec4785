"""Dataset config (`gen.yaml`) and task specs (`tasks/<id>/task.spec.yaml`).

Parsing is strict: unknown keys, wrong types, missing fields and bad task ids are each an
`SpecError` (exit 2) whose one line names the file, the line, the field and the fix.

Loading uses libyaml when present (fast path); only when a spec is invalid is the file
composed again to find the line of the offending node.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from generator.core.errors import SpecError
from generator.spec.config import (
    _APT_NAME_RE,
    _ENV_KEY_RE,
    _REPO_RE,
    _REQ_RE,
    _author,
    _image_ref_check,
    _resources,
    _timeouts,
    load_dataset_config,
)
from generator.spec.fields import _kind, _Map, _rel_path_check
from generator.spec.files import TaskFiles
from generator.spec.model import (
    DIFFICULTIES,
    EVAL_TYPES,
    LOG_PARSERS,
    RESERVED_DIRS,
    SHA1_RE,
    SPEC_FILE,
    TASK_ID_RE,
    Defaults,
    Environment,
    FileEntry,
    Project,
    Source,
    SweTask,
    Task,
    TerminalTask,
)
from generator.spec.yamlload import _Ctx, _read_yaml

__all__ = [
    "load_project",
    "load_task",
    "parse_task",
]


# --------------------------------------------------------------------------------------
# Typed model
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# What is in a task directory: listed once, asked many times
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# YAML loading with line numbers on demand
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# Field readers
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# gen.yaml
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# task.spec.yaml
# --------------------------------------------------------------------------------------


def _environment(m: _Map | None, defaults: Defaults, ctx: _Ctx) -> Environment:
    if m is None:
        if defaults.base_image is None:
            raise ctx.fail((), "missing required field 'environment.base_image'",
                           "set environment.base_image here or defaults.base_image in gen.yaml")
        return Environment(base_image=defaults.base_image, apt=tuple(sorted(defaults.apt)),
                           python=tuple(sorted(defaults.python)), env=defaults.env)
    base = m.text("base_image", default=defaults.base_image or "")
    if not base:
        raise ctx.fail(m.fpath, "missing required field 'base_image'",
                       "set environment.base_image here or defaults.base_image in gen.yaml")
    _image_ref_check(m, "base_image", base)
    apt = m.str_list("apt", item_pattern=_APT_NAME_RE, what="Debian package name",
                     fix="list Debian package names only; versions come from gen lock")
    python = m.str_list("python", item_pattern=_REQ_RE, what="Python requirement",
                        fix="write requirements like 'requests==2.32.3' or 'requests>=2'")
    env = dict(defaults.env)
    env.update(dict(m.str_map("env", key_pattern=_ENV_KEY_RE)))
    workdir = m.text("workdir", default="/app")
    if not workdir.startswith("/"):
        raise ctx.fail((*m.fpath, "workdir"), f"'{workdir}' is not an absolute path",
                       "write workdir as an absolute path such as /app")
    m.done()
    return Environment(
        base_image=base,
        apt=tuple(sorted(set(defaults.apt) | set(apt))),
        python=tuple(sorted(set(defaults.python) | set(python), key=str.lower)),
        env=tuple(sorted(env.items())),
        workdir=workdir,
    )


def _files(m: _Map, ctx: _Ctx, listing: TaskFiles) -> tuple[FileEntry, ...]:
    raw = m.raw("files")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ctx.fail(("files",), f"must be a list, got {_kind(raw)}",
                       "write files as a list of {src: ..., dest: ...}")
    out: list[FileEntry] = []
    for i, item in enumerate(raw):
        fm = _Map(ctx, item, ("files", i), f"files[{i}]")
        src = _rel_path_check(fm, "src", fm.text("src", required=True), ("files", i, "src"))
        dest = fm.text("dest", required=True)
        if not dest.startswith("/"):
            raise ctx.fail(("files", i, "dest"), f"'{dest}' is not an absolute path",
                           "write dest as an absolute path in the image, e.g. /app/main.py")
        mode_s = fm.text("mode", default="")
        mode: int | None = None
        if mode_s:
            if not re.fullmatch(r"0?[0-7]{3,4}", mode_s):
                raise ctx.fail(("files", i, "mode"), f"'{mode_s}' is not an octal file mode",
                               "write the mode as a quoted octal string, e.g. \"0755\"")
            mode = int(mode_s, 8)
        fm.done()
        if src.split("/", 1)[0] in RESERVED_DIRS or src == SPEC_FILE:
            raise ctx.fail(("files", i, "src"), f"'{src}' is reserved for gen",
                           f"move the file out of {', '.join(RESERVED_DIRS)}/")
        if not listing.exists(src):
            raise ctx.fail(("files", i, "src"), f"'{src}' does not exist in the task directory",
                           f"create {src} or fix the path")
        out.append(FileEntry(src=src, dest=dest, mode=mode))
    return tuple(out)


def _common(m: _Map, ctx: _Ctx, defaults: Defaults, *, difficulty_required: bool
            ) -> dict[str, Any]:
    if difficulty_required:
        difficulty = m.text("difficulty", required=True, choices=DIFFICULTIES,
                           fix=f"add 'difficulty:' with one of {', '.join(DIFFICULTIES)}")
    else:
        difficulty = m.text("difficulty", default="medium", choices=DIFFICULTIES)
    return {
        "difficulty": difficulty,
        "category": m.text("category", default=defaults.category, nonempty=True),
        "tags": m.str_list("tags", item_pattern=re.compile(r"^\S+\Z"), what="tag",
                           fix="write tags as single words"),
        "author": _author(m.sub("author", "author"), defaults.author),
        "timeouts": _timeouts(m.sub("timeouts", "timeouts"), defaults.timeouts),
        "resources": _resources(m.sub("resources", "resources"), defaults.resources),
        "environment": _environment(m.sub("environment", "environment"), defaults, ctx),
        "record_asciinema": m.boolean("record_asciinema", default=False),
    }


def _read_task_file(m: _Map, ctx: _Ctx, listing: TaskFiles, key: str, *,
                    default: str | None, required_exists: bool = True) -> tuple[str, str]:
    """A field naming a file in the task dir: returns (relative path, text)."""
    value = m.text(key, required=default is None, default=default or "")
    rel = _rel_path_check(m, key, value, (key,))
    if not listing.is_file(rel):
        if not required_exists:
            return rel, ""
        raise ctx.fail((key,), f"'{rel}' does not exist in the task directory",
                       f"create {ctx.shown.rsplit('/', 1)[0]}/{rel} or fix '{key}'")
    try:
        return rel, listing.read_text(rel)
    except UnicodeDecodeError:
        raise ctx.fail((key,), f"'{rel}' is not UTF-8 text", "save it as UTF-8") from None


def parse_task(task_dir: Path, data: Any, ctx: _Ctx, defaults: Defaults,
               listing: TaskFiles | None = None) -> Task:
    task_id = task_dir.name
    if listing is None:
        listing = TaskFiles(task_dir)
    if not TASK_ID_RE.match(task_id):
        raise SpecError(
            f"bad task id '{task_id}': must match {TASK_ID_RE.pattern} "
            "(Docker Compose project names are lowercase)",
            file=ctx.shown, field="<task id>",
            hint=f"rename the directory to '{_suggest_id(task_id)}'",
        )
    m = _Map(ctx, data, (), "a task spec")
    kind = m.text("kind", required=True, choices=("terminal", "swe"),
                 fix="add 'kind: terminal' or 'kind: swe'")
    base: dict[str, Any] = {"id": task_id, "path": task_dir, "spec_file": ctx.file, "kind": kind}
    task: Task
    if kind == "terminal":
        instruction = m.text("instruction", required=True, nonempty=True,
                            fix="add 'instruction: |' with the text the agent sees")
        common = _common(m, ctx, defaults, difficulty_required=True)
        files = _files(m, ctx, listing)
        tm = m.sub("tests", "tests")
        tests_dir, test_command = "tests", ""
        if tm is not None:
            tests_dir = _rel_path_check(tm, "dir", tm.text("dir", default="tests"),
                                        ("tests", "dir"))
            test_command = tm.text("command", default="")
            tm.done()
        if not listing.is_dir(tests_dir) or not listing.has_entries(tests_dir):
            raise ctx.fail(("tests",), f"tests directory '{tests_dir}' is missing or empty",
                           f"add test files under {tests_dir}/ in the task directory")
        solution, solution_text = _read_task_file(m, ctx, listing, "solution",
                                                  default="solution.sh")
        m.done()
        task = TerminalTask(**base, **common, instruction=instruction, files=files,
                            tests_dir=tests_dir, test_command=test_command, solution=solution,
                            solution_text=solution_text)
    else:
        problem = m.text("problem_statement", required=True, nonempty=True)
        hints = m.text("hints", default="")
        repo = m.text("repo", required=True, pattern=_REPO_RE,
                     fix="write repo as owner/name, e.g. gen-example/minicalc")
        version = m.text("version", required=True, nonempty=True,
                        fix="quote the version: version: \"1.0\"")
        sm = m.sub("source", "source")
        if sm is None:
            raise ctx.fail((), "missing required field 'source'",
                           "add 'source: {git: path/or/url}' or 'source: {archive: ...}'")
        git, archive = sm.text("git", default=""), sm.text("archive", default="")
        sm.done()
        if bool(git) == bool(archive):
            raise ctx.fail(("source",), "source needs exactly one of 'git' or 'archive'",
                           "write source: {git: <bundle path or URL>} or {archive: <path or URL>}")
        source = Source(type="git" if git else "archive", location=git or archive)
        base_commit = m.text("base_commit", required=True, pattern=SHA1_RE,
                            fix="write the full 40-hex commit sha the repo is checked out at")
        setup_commit = m.text("environment_setup_commit", default=base_commit, pattern=SHA1_RE,
                             fix="write a full 40-hex commit sha")
        patch_file, patch = _read_task_file(m, ctx, listing, "patch", default="gold.patch")
        test_patch_file, test_patch = _read_task_file(m, ctx, listing, "test_patch",
                                                      default="test.patch")
        for key, text in (("patch", patch), ("test_patch", test_patch)):
            if "diff --git" not in text:
                raise ctx.fail((key,), "the file is not a git diff (no 'diff --git' line)",
                               "write it with 'git diff' or 'git format-patch'")
        # SWE-bench's pytest log parsers split result lines on whitespace: a test id with a
        # space in it could never be matched, so it is refused here.
        test_id = re.compile(r"^\S+\Z")
        id_fix = "use test ids without spaces (parametrize with ids=...)"
        f2p = m.str_list("FAIL_TO_PASS", what="test name", item_pattern=test_id, fix=id_fix)
        p2p = m.str_list("PASS_TO_PASS", what="test name", item_pattern=test_id, fix=id_fix)
        overlap = sorted(set(f2p) & set(p2p))
        if overlap:
            raise ctx.fail(("PASS_TO_PASS",), f"'{overlap[0]}' is in both FAIL_TO_PASS and "
                           "PASS_TO_PASS", "keep each test in one list")
        test_command = m.text("test_command", required=True, nonempty=True,
                             fix="add e.g. test_command: pytest -rA tests/test_x.py")
        log_parser = m.text("log_parser", default="parse_log_pytest", choices=LOG_PARSERS)
        eval_type = m.text("eval_type", default="pass_and_fail", choices=EVAL_TYPES)
        common = _common(m, ctx, defaults, difficulty_required=False)
        m.done()
        env = common["environment"]
        if env.workdir == "/app" and not (m.data.get("environment") or {}).get("workdir"):
            common["environment"] = Environment(base_image=env.base_image, apt=env.apt,
                                                python=env.python, env=env.env, workdir="/testbed")
        task = SweTask(**base, **common, problem_statement=problem, hints=hints, repo=repo,
                       version=version, source=source, base_commit=base_commit,
                       environment_setup_commit=setup_commit, patch=patch,
                       test_patch=test_patch, patch_file=patch_file,
                       test_patch_file=test_patch_file, fail_to_pass=f2p, pass_to_pass=p2p,
                       test_command=test_command, log_parser=log_parser, eval_type=eval_type)
    return task


def slug(text: str) -> str:
    """`text` as a task id / dataset name: lowercase, '-' for other characters ('' if none
    is left)."""
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-._")


def _suggest_id(task_id: str) -> str:
    return slug(task_id) or "task-1"


def load_task(task_dir: Path, defaults: Defaults, root: Path | None = None,
              listing: TaskFiles | None = None) -> Task:
    """Load and validate one task spec; `listing` (taken by the caller) saves a directory walk."""
    spec = task_dir / SPEC_FILE
    st = listing.stats.get(SPEC_FILE) if listing is not None else None
    ctx, data = _read_yaml(spec, root, st.st_size if st is not None else None)
    return parse_task(task_dir, data, ctx, defaults, listing)


def discover_tasks(project: Path, only: Sequence[str] | None = None, *,
                   check_specs: bool = True) -> list[Path]:
    """The project's task directories, tasks/<id>/, sorted: the one listing every command uses.

    Refused, each in one line naming the directory and the fix: no tasks/ directory, a task id
    Docker Compose would not take, a directory without a spec (unless `check_specs` is False:
    render checks that when it loads the task, as a fresh cache entry proves it for the
    others), and an `only` naming no task.
    """
    tasks_root = project / "tasks"
    if not tasks_root.is_dir():
        raise SpecError("no tasks/ directory", file="tasks/",
                        hint="create tasks/<id>/task.spec.yaml, or start a new project "
                        "with `gen init --project DIR`")
    with os.scandir(tasks_root) as it:
        names = sorted(e.name for e in it if e.is_dir())
    for name in names:
        if not TASK_ID_RE.match(name):
            raise SpecError(f"bad task id '{name}': must match {TASK_ID_RE.pattern} (Docker "
                            "Compose project names are lowercase)", file=f"tasks/{name}",
                            field="<task id>", hint="rename the directory to lowercase "
                            "letters, digits, '.', '_' and '-'")
    if only:
        known = set(names)
        bad = [t for t in only if t not in known]
        if bad:
            raise SpecError(f"no task '{bad[0]}'", file="tasks/",
                            hint=f"choose from: {', '.join(names) or '(none)'}")
        chosen = set(only)
        names = [n for n in names if n in chosen]
    if check_specs:
        for name in names:
            if not (tasks_root / name / SPEC_FILE).is_file():
                raise SpecError(f"task directory has no {SPEC_FILE}", file=f"tasks/{name}",
                                hint=f"add tasks/{name}/{SPEC_FILE} or remove the directory")
    return [tasks_root / n for n in names]


def load_project(project: Path, *, only: Sequence[str] | None = None,
                 loader: Callable[[Path, Defaults, Path], Task] | None = None) -> Project:
    """Load gen.yaml and every task spec, strictly. `only` restricts to these task ids."""
    project = project.resolve()
    config = load_dataset_config(project)
    load = loader or load_task
    dirs = discover_tasks(project, only)
    tasks = tuple(load(d, config.defaults, project) for d in dirs)
    return Project(config=config, tasks=tasks)


def select_tasks(project: Project, only: Sequence[str] | None) -> list[Task]:
    """The tasks named in `only` (all when empty); an unknown name is an input error."""
    if not only:
        return list(project.tasks)
    known = {t.id for t in project.tasks}
    for name in only:
        if name not in known:
            raise SpecError(f"no task '{name}'", file="tasks/",
                            hint=f"choose one of: {', '.join(sorted(known)) or '(none)'}")
    return [t for t in project.tasks if t.id in set(only)]


def task_mapping_view(task: Task) -> Mapping[str, Any]:  # pragma: no cover - debugging aid
    return {k: getattr(task, k) for k in task.__dataclass_fields__}
