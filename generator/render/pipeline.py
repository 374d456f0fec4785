"""`gen render`: task specs + templates + lockfiles -> dataset/<id>/..., a pure offline function.

Two phases, so an error anywhere leaves the previous dataset untouched:

1. `plan_render` renders and lints every task in memory and returns a `RenderPlan`
   (relative path -> bytes + mode). Same inputs -> same plan, on any machine.
2. `apply_plan` compares the plan with the output directory, writes only the files that
   changed (each atomically), and removes files of tasks that no longer exist.

A stat cache (`.gen/render-cache.json`, never part of the output) lets an unchanged re-render
skip reading and rendering: an entry is trusted only while every input and output file
still has the size and mtime recorded when it was last rendered or verified.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import multiprocessing
import os
import re
import shlex
import shutil
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from generator import __version__
from generator.core import state, yamltext
from generator.core.errors import InputError, LintError, LockError, SpecError
from generator.core.fsutil import (
    DIR_MODE,
    atomic_write,
    current_umask,
    make_dir,
    read_file,
    read_file_stat,
    walk_files,
    write_all,
)
from generator.core.layout import APT_SUMS, PYTHON_REQUIREMENTS
from generator.lint.dockerfile import lint_dockerfile, lint_script
from generator.lock.lockfiles import (
    TASK_LOCK_FILES,
    LockSet,
    apt_input,
    python_input,
    read_lockset,
    source_input,
    split_ref,
)
from generator.spec.project import (
    SPEC_FILE,
    DatasetConfig,
    SweTask,
    Task,
    TaskFiles,
    TerminalTask,
    discover_tasks,
    load_dataset_config,
    load_task,
    rel_path,
)

__all__ = [
    "RenderPlan",
    "RenderResult",
    "TemplateSet",
    "plan_render",
    "render",
    "render_task",
]

PACKAGE_TEMPLATES = Path(__file__).parent.parent / "templates"
SCRIPT_MODE = 0o755
FILE_MODE = 0o644
CACHE_FILE = ".gen/render-cache.json"
CACHE_VERSION = 2

# The files every task gets, by kind: (output name, template name, mode)
OUTPUTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "terminal": (
        ("Dockerfile", "Dockerfile", FILE_MODE),
        ("docker-compose.yaml", "docker-compose.yaml", FILE_MODE),
        ("task.yaml", "task.yaml", FILE_MODE),
        ("run-tests.sh", "run-tests.sh", SCRIPT_MODE),
        ("solution.sh", "solution.sh", SCRIPT_MODE),
        ("README.md", "README.md", FILE_MODE),
    ),
    "swe": (
        ("Dockerfile", "Dockerfile", FILE_MODE),
        ("docker-compose.yaml", "docker-compose.yaml", FILE_MODE),
        ("task.yaml", "task.yaml", FILE_MODE),
        ("run-tests.sh", "run-tests.sh", SCRIPT_MODE),
        ("solution.sh", "solution.sh", SCRIPT_MODE),
        ("eval.sh", "eval.sh", SCRIPT_MODE),
        ("README.md", "README.md", FILE_MODE),
    ),
}


# --------------------------------------------------------------------------------------
# Jinja environment: one factory, strict
# --------------------------------------------------------------------------------------


def _docker_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]+", value):
        return value
    return json.dumps(value)


def heredoc_delimiter(text: str) -> str:
    """A heredoc delimiter that does not occur in `text` (content-derived, so deterministic)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    for i in range(0, 56, 8):
        token = f"GEN_EOF_{digest[i:i + 8]}"
        if token not in text:
            return token
    raise ValueError("cannot find a heredoc delimiter")  # pragma: no cover


class _LayeredLoader(jinja2.BaseLoader):
    """Looks a template up layer by layer (task, dataset, gen's defaults).

    A name of the form `kind::name` means "`kind/name.j2`, else `name.j2`", tried within each
    layer before the next, so a dataset's generic `Dockerfile.j2` beats gen's
    `terminal/Dockerfile.j2`. Plain names (e.g. `_macros.j2` imports) are looked up as-is.
    """

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = list(layers)

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Callable[[], bool]]:
        if "::" in template:
            kind, name = template.split("::", 1)
            candidates = [f"{kind}/{name}.j2", f"{name}.j2"]
        else:
            candidates = [template]
        for layer in self.layers:
            for cand in candidates:
                path = layer / cand
                if path.is_file():
                    text = path.read_text(encoding="utf-8")
                    return text, str(path), lambda: True
        raise jinja2.TemplateNotFound(template)


_DICT_ATTRS = frozenset(dir(dict))
_PACKAGE_PREFIX = f"{PACKAGE_TEMPLATES}/"


class _Environment(jinja2.Environment):
    """A Jinja environment that also remembers the templates TemplateSet.get looked up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded: dict[str, jinja2.Template] = {}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """`obj.attribute` in a template, as Jinja answers it, without its exception for
        every dict key: a plain dict has no attribute but its methods (it has no instance
        dict), so for any other name Jinja's attribute lookup always fails over to the item."""
        if type(obj) is dict and attribute not in _DICT_ATTRS:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        try:  # from here on, jinja2.Environment.getattr (inlined: called for every a.b)
            return getattr(obj, attribute)
        except AttributeError:
            pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)


def make_environment(search_path: Sequence[Path]) -> jinja2.Environment:
    env = _Environment(
        loader=_LayeredLoader(search_path),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        auto_reload=False,
        cache_size=-1,
    )
    env.filters["yaml_str"] = yamltext.quoted
    env.filters["yaml_flow"] = yamltext.flow
    env.filters["yaml_block"] = yamltext.block
    env.filters["shquote"] = shlex.quote
    env.filters["docker_quote"] = _docker_quote
    env.globals["heredoc"] = heredoc_delimiter
    return env


class TemplateSet:
    """Template lookup: task `templates/`, then the dataset's `templates/`, then gen's own.

    Within each layer `<kind>/<name>.j2` wins over `<name>.j2`; a layer wins over the next.
    """

    def __init__(self, project_templates: Path | None) -> None:
        self._project = project_templates if project_templates and project_templates.is_dir() \
            else None
        self._envs: dict[Path | None, jinja2.Environment] = {}

    def env_for(self, task_dir: Path, has_override: bool | None = None) -> jinja2.Environment:
        """The environment for a task; `has_override`: whether it has a templates/ dir
        (looked up when not given)."""
        if has_override is None:
            has_override = (task_dir / "templates").is_dir()
        key = task_dir / "templates" if has_override else None
        env = self._envs.get(key)
        if env is None:
            path = [p for p in (key, self._project) if p is not None] + [PACKAGE_TEMPLATES]
            env = make_environment(path)
            if key is not None:  # one task's own templates: not kept past the task
                return env
            self._envs[key] = env
        return env

    def get(self, task: Task, name: str, env: jinja2.Environment | None = None
            ) -> jinja2.Template:
        env = env or self.env_for(task.path)
        key = f"{task.kind}::{name}"
        loaded = env.loaded if isinstance(env, _Environment) else {}
        got = loaded.get(key)
        if got is not None:
            return got
        try:
            got = loaded[key] = env.get_template(key)
            return got
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"template syntax error: {exc.message}", file=exc.filename,
                             line=exc.lineno, hint="fix the template") from None
        except jinja2.TemplateNotFound:
            raise InputError(f"no template for '{name}'", file=f"templates/{name}.j2",
                             hint="restore the default template or add an override") from None

    def fingerprint(self) -> str:
        """Digest of every template file that could be used (for the render cache)."""
        h = hashlib.sha256()
        for root in (self._project, PACKAGE_TEMPLATES):
            if root is None:
                continue
            for f in walk_files(root):
                h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()


# --------------------------------------------------------------------------------------
# Per-task context: everything locked, checked here
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFile:
    data: bytes
    mode: int


def _task_rel(task: Task, project: Path) -> str:
    return rel_path(task.spec_file, project)


def _image_context(task: Task, config: DatasetConfig, locks: LockSet) -> dict[str, str]:
    ref = task.environment.base_image
    _repo, tag, digest = split_ref(ref)
    if tag == "latest" or (tag is None and digest is None):
        raise LintError(f"base image '{ref}' uses the moving 'latest' tag",
                        file=_task_rel(task, config.path),
                        field="environment.base_image",
                        hint="name an explicit tag (e.g. :bookworm); gen lock pins its digest")
    platform = config.platforms[0]
    pin = locks.images.get(ref, platform)
    if pin is None:
        raise LockError(f"task '{task.id}': base image '{ref}' ({platform}) has no digest in the "
                        "lock", file="lockfiles/images.lock", field=ref,
                        hint="run `gen lock` to pin it")
    if digest is not None and digest not in (pin.index_digest, pin.manifest_digest):
        raise LockError(f"task '{task.id}': base image '{ref}' names a digest the lock does not "
                        "have", file="lockfiles/images.lock", field=ref,
                        hint="run `gen lock --update`")
    return {"ref": ref, "pinned": pin.pinned(), "platform": platform,
            "index_digest": pin.index_digest, "manifest_digest": pin.manifest_digest}


def _stale(task: Task, what: str, file: str) -> LockError:
    return LockError(f"task '{task.id}': the {what} lock is stale (the spec changed since it was "
                     "locked)", file=file, hint="run `gen lock` to update it")


def _apt_context(task: Task, image: dict[str, str], locks: LockSet) -> list[dict[str, Any]]:
    names = task.environment.apt
    lock_file = f"lockfiles/tasks/{task.id}/apt.lock"
    lock = locks.apt(task.id)
    if not names:
        return []
    if lock is None:
        raise LockError(f"task '{task.id}': Debian packages {', '.join(names)} are not locked",
                        file=lock_file, hint="run `gen lock`")
    key = (image["pinned"], names)
    want = _APT_INPUTS.get(key)
    if want is None:
        want = apt_input(image["pinned"], names)
        if len(_APT_INPUTS) < 4096:
            _APT_INPUTS[key] = want
    if lock.input != want:
        raise _stale(task, "Debian package", lock_file)
    memo = _APT_ROWS.get(id(lock))
    if memo is None or memo[0] is not lock:
        locked = {p.name for p in lock.packages}
        rows = tuple({"name": p.name, "version": p.version, "arch": p.arch, "sha256": p.sha256,
                      "filename": p.filename, "size": p.size}
                     for p in sorted(lock.packages, key=lambda p: p.filename))
        memo = (lock, locked, rows)
        if len(_APT_ROWS) < 4096:
            _APT_ROWS[id(lock)] = memo  # holds the lock, so its id is not reused meanwhile
    _, locked, rows = memo
    missing = [n for n in names if n.split(":")[0] not in locked]
    if missing:
        raise LockError(f"task '{task.id}': package '{missing[0]}' has no exact version in the "
                        "lock", file=lock_file, field=missing[0], hint="run `gen lock --update`")
    return [dict(r) for r in rows]  # fresh dicts: a template cannot reach another task's


# Per process: tasks with the same packages share one parsed lock (LockSet), so the input
# digest and the template rows are computed once per distinct lock.
_APT_INPUTS: dict[tuple[str, tuple[str, ...]], str] = {}
_APT_ROWS: dict[int, tuple[Any, set[str], tuple[dict[str, Any], ...]]] = {}


def _python_context(task: Task, config: DatasetConfig, locks: LockSet,
                    apt: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    reqs = task.environment.python
    lock_file = f"lockfiles/tasks/{task.id}/requirements.txt"
    if not reqs:
        return [], ""
    lock = locks.python(task.id)
    if lock is None:
        raise LockError(f"task '{task.id}': Python requirements are not locked with hashes",
                        file=lock_file, hint="run `gen lock`")
    target = locks.python_target(task.id, task.environment.base_image, config.platforms[0])
    if lock.input != python_input(reqs, config.platforms[0], target):
        raise _stale(task, "Python", lock_file)
    if not any(p["name"] == "python3-pip" for p in apt):
        raise LintError(f"task '{task.id}' installs Python requirements but not pip",
                        file=_task_rel(task, config.path), field="environment.apt",
                        hint="add python3-pip to environment.apt")
    pins = [{"name": p.name, "version": p.version, "hashes": list(p.hashes)} for p in lock.pins]
    return pins, lock.text


def _source_context(task: SweTask, locks: LockSet) -> dict[str, str]:
    lock_file = f"lockfiles/tasks/{task.id}/source.lock"
    lock = locks.source(task.id)
    if lock is None:
        raise LockError(f"task '{task.id}': source '{task.source.location}' has no commit/sha256 "
                        "in the lock", file=lock_file, hint="run `gen lock`")
    if lock.input != source_input(task.source.type, task.source.location, task.base_commit):
        raise _stale(task, "source", lock_file)
    return {"type": lock.type, "location": lock.location, "sha256": lock.sha256,
            "commit": lock.commit, "filename": lock.filename}


_DIFF_FILE_RE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def patch_files(patch: str) -> list[str]:
    """Paths a git diff touches (both sides), sorted and unique."""
    out: set[str] = set()
    for a, b in _DIFF_FILE_RE.findall(patch):
        out.update((a, b))
    return sorted(out)


def _pytest_command(task: Task, command: str, project: Path) -> str:
    if "pytest" in command and "-rA" not in command:
        raise LintError(f"task '{task.id}': the pytest command lacks -rA, so the harness cannot "
                        "parse per-test results", file=_task_rel(task, project),
                        field="test_command",
                        hint="add -rA to the pytest command")
    return command


def task_context(task: Task, config: DatasetConfig, locks: LockSet) -> dict[str, Any]:
    image = _image_context(task, config, locks)
    apt = _apt_context(task, image, locks)
    python, python_text = _python_context(task, config, locks, apt)
    ctx: dict[str, Any] = {
        "gen": {"version": __version__},
        "dataset": {"name": config.name, "version": config.version,
                    "source_date_epoch": config.source_date_epoch},
        "task": task,
        "image": image,
        "apt": apt,
        "python": python,
        "python_lock": python_text,
        "env": list(task.environment.env),
        "workdir": task.environment.workdir,
    }
    if isinstance(task, TerminalTask):
        if "tmux" not in {p["name"] for p in apt}:
            raise LintError(f"task '{task.id}': Terminal-Bench drives the agent through tmux, "
                            "which the image would not have", file=_task_rel(task, config.path),
                            field="environment.apt",
                            hint="add tmux to environment.apt (or defaults.apt in gen.yaml)")
        if task.record_asciinema and "asciinema" not in {p["name"] for p in apt}:
            raise LintError(f"task '{task.id}': record_asciinema needs asciinema in the image",
                            file=_task_rel(task, config.path), field="environment.apt",
                            hint="add asciinema to apt")
        command = task.test_command or \
            'python3 -m pytest -rA -p no:cacheprovider "$TEST_DIR"'
        ctx["test_command"] = _pytest_command(task, command, config.path)
        ctx["files"] = task.files
        ctx["solution_text"] = task.solution_text
    else:
        assert isinstance(task, SweTask)
        ctx["source"] = _source_context(task, locks)
        test_files = patch_files(task.test_patch)
        gold_files = patch_files(task.patch)
        overlap = sorted(set(test_files) & set(gold_files))
        if overlap:
            raise LintError(f"task '{task.id}': the gold patch and the test patch both edit "
                            f"'{overlap[0]}'", file=_task_rel(task, config.path), field="patch",
                            hint="move test changes to test_patch and code changes to patch")
        ctx["test_files"] = test_files
        # The test files, as SWE-bench's eval script runs them: FAIL_TO_PASS / PASS_TO_PASS ids
        # are names in the log (SWE-bench's parser cuts them at the first space), not
        # command-line selectors (an id with a space or an escaped character selects nothing).
        ctx["test_command"] = _pytest_command(task, task.test_command, config.path)
    return ctx


# --------------------------------------------------------------------------------------
# Rendering one task
# --------------------------------------------------------------------------------------


def _copy_tree(listing: TaskFiles, rel: str, dest_prefix: str, out: dict[str, RenderedFile],
               *, force_mode: int | None = None) -> None:
    """Copy a task's file, or every file below its directory, verbatim into `out`."""
    root = listing.root
    if listing.is_file(rel):
        files = [(rel, dest_prefix)]
    else:
        cut = len(rel) + 1
        files = [(f, f"{dest_prefix}/{f[cut:]}") for f in listing.files_under(rel)]
    for f, dest in files:
        data = listing.read_bytes(f)
        if force_mode is not None:
            mode = force_mode
        else:
            st = listing.stats.get(f)
            if st is None:  # reached through a symlink
                st = os.stat(f"{root}/{f}")
            mode = SCRIPT_MODE if st.st_mode & 0o111 else FILE_MODE
        out[dest] = RenderedFile(data, mode)


def render_task(task: Task, config: DatasetConfig, locks: LockSet, templates: TemplateSet,
                listing: TaskFiles | None = None) -> dict[str, RenderedFile]:
    """All files of one task, as paths relative to the task's output directory."""
    ctx = task_context(task, config, locks)
    out: dict[str, RenderedFile] = {}
    # inputs copied verbatim first, so README can list every file
    if isinstance(task, TerminalTask):
        if listing is None:
            listing = TaskFiles(task.path)
        _copy_tree(listing, task.tests_dir, "tests", out)
        for f in task.files:
            _copy_tree(listing, f.src, f"files/{f.src}", out,
                       force_mode=None if f.mode is None else (
                           SCRIPT_MODE if f.mode & 0o111 else FILE_MODE))
    else:
        out["tests/test.patch"] = RenderedFile(_ensure_nl(task.test_patch).encode(), FILE_MODE)
        tests_json = json.dumps({"FAIL_TO_PASS": list(task.fail_to_pass),
                                 "PASS_TO_PASS": list(task.pass_to_pass)}, indent=2) + "\n"
        out["tests/tests.json"] = RenderedFile(tests_json.encode(), FILE_MODE)
    if ctx["apt"]:
        lines = "".join(f"{p['sha256']}  {p['filename']}\n" for p in ctx["apt"])
        out[APT_SUMS] = RenderedFile(lines.encode(), FILE_MODE)
    if ctx["python"]:
        out[PYTHON_REQUIREMENTS] = RenderedFile(ctx["python_lock"].encode(), FILE_MODE)
    outputs = OUTPUTS[task.kind]
    ctx["out_files"] = sorted({*out, *(name for name, _, _ in outputs)})
    if isinstance(task, SweTask):
        ctx["gold_patch"] = _ensure_nl(task.patch)
        ctx["test_patch"] = _ensure_nl(task.test_patch)
    overridden = False
    env = templates.env_for(task.path, None if listing is None else listing.is_dir("templates"))
    for name, template_name, mode in outputs:
        template = templates.get(task, template_name, env)
        if not (template.filename or "").startswith(_PACKAGE_PREFIX):
            overridden = True
        try:
            text = _render_template(template, ctx)
        except jinja2.UndefinedError as exc:
            raise InputError(f"template '{template.name}' uses an undefined value: {exc.message}",
                             file=template.filename, hint="fix the template or the spec") from None
        except jinja2.TemplateError as exc:
            raise InputError(f"template '{template.name}' failed: {exc}", file=template.filename,
                             hint="fix the template") from None
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        where = f"dataset/{task.id}/{name} (from {template.filename})"
        if name == "Dockerfile":
            lint_dockerfile(text, where=where, task_id=task.id)
        elif name.endswith(".sh"):
            lint_script(text, where=where, task_id=task.id)
        out[name] = RenderedFile(text.encode("utf-8"), mode)
    if overridden:
        # what Terminal-Bench would reject or silently ignore (misspelled keys, bad compose...)
        # in what an override template wrote; gen's own templates are held to it by the tests
        from generator.lint.consumers import lint_tb_task

        lint_tb_task(task.id, out)
    return out


_MERGED_GLOBALS: dict[jinja2.Template, dict[str, Any]] = {}


def _render_template(template: jinja2.Template, ctx: dict[str, Any]) -> str:
    """`template.render(ctx)`, without re-merging the template's globals on every call.

    Jinja keeps a template's globals in a ChainMap and copies it into a new dict per render,
    which costs as much as rendering a short template; the merge is done once per template
    here and the context is shared (Jinja does not mutate it).
    """
    merged = _MERGED_GLOBALS.get(template)
    if merged is None:
        merged = _MERGED_GLOBALS[template] = dict(template.globals)
    # as Template.new_context(vars, shared=True), minus a second copy of the globals
    # (they only matter to imports "without context", which then use the same globals)
    env = template.environment
    context = env.context_class(env, {**merged, **ctx}, template.name, template.blocks)
    try:
        return template.environment.concat(template.root_render_func(context))
    except Exception:
        template.environment.handle_exception()
        raise  # pragma: no cover - handle_exception always raises


def _ensure_nl(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# --------------------------------------------------------------------------------------
# The whole project: plan, cache, apply
# --------------------------------------------------------------------------------------


@dataclass
class RenderPlan:
    """Every output file (path relative to the output dir) and the tasks they belong to."""

    files: dict[str, RenderedFile] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


@dataclass
class RenderResult:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    tasks: int = 0
    cached_tasks: int = 0

    def changed(self) -> list[str]:
        return sorted(self.written + self.removed)


# A file's signature: size, mtime (ns), inode. An entry whose files all still have the
# signatures recorded at render time is fresh. Timestamps have a clock-tick granularity, so a
# file whose mtime lies within RACY_NS of the moment its signature was taken could change
# again without its signature changing; such an entry is not trusted ("racily clean", as git
# calls it). Inputs are signed before they are read; outputs are judged against the moment
# the cache was saved (as git judges files against its index's mtime).
RACY_NS = 100_000_000
COARSE_RACY_NS = 2_000_000_000  # file systems with whole-second timestamps


Sig = tuple[int, int, int]  # size, mtime_ns, inode; (-1, -1, -1): the path does not exist
MISSING: Sig = (-1, -1, -1)


def _sig(st: os.stat_result) -> Sig:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _tree_sigs(root: str) -> list[tuple[str, Sig]]:
    """Signatures of root ("") and of every file and directory below it, by relative path.

    Directories are signed too: adding or removing a file changes its directory's mtime, so
    a later check needs no directory listing, only one stat per recorded path.
    """
    try:
        return TaskFiles(root).signatures()
    except (FileNotFoundError, NotADirectoryError):
        return [("", MISSING)]


def _read_locks(lock_dir: str) -> tuple[list[tuple[str, Sig]], dict[str, bytes]]:
    """A task's lock files (the bytes of each one that exists) and their signatures.

    Signed as render reads them: the directory itself (adding or removing a lock file
    changes its mtime) and each lock file by the fstat of the descriptor it was read from.
    A file render does not read there cannot change the output and is not signed.
    """
    try:
        sigs = [("", _sig(os.stat(lock_dir)))]
    except (FileNotFoundError, NotADirectoryError):
        return [("", MISSING)], {}
    data: dict[str, bytes] = {}
    for name in TASK_LOCK_FILES:
        try:
            data[name], st = read_file_stat(f"{lock_dir}/{name}")
        except (FileNotFoundError, NotADirectoryError):
            continue
        sigs.append((name, _sig(st)))
    return sigs, data


def _digest(values: Sequence[int]) -> str:
    return hashlib.blake2b(array("q", values).tobytes(), digest_size=16).hexdigest()


@dataclass
class _Signed:
    """One task's signatures: inputs (signed before reading), lock dir, outputs.

    Once the outputs are known the worker seals it: only the layout (interned, so a chunk
    of results pickles each distinct layout once) and the digest travel back.
    """

    t: int
    inputs: list[tuple[str, Sig]] | None
    locks: list[tuple[str, Sig]] | None
    outputs: list[tuple[str, Sig]] | None = None  # None: signed by the main process
    layout: tuple[tuple[str, ...], ...] | None = None
    digest: str = ""

    def entry(self) -> tuple[tuple[tuple[str, ...], ...], str]:
        if self.layout is not None:
            return self.layout, self.digest
        assert self.inputs is not None and self.locks is not None and self.outputs is not None
        groups = (self.inputs, self.locks, self.outputs)
        layout = tuple(tuple(rel for rel, _ in g) for g in groups)
        return layout, _digest([v for g in groups for _, sig in g for v in sig])

    def seal(self, interned: dict[Any, Any]) -> None:
        layout, self.digest = self.entry()
        self.layout = interned.setdefault(layout, layout)
        self.inputs = self.locks = self.outputs = None


class _Cache:
    """Stat-based render cache: never changes the output, only skips unchanged work.

    Per task: `t` (when its inputs were signed), a layout (the relative paths signed in the
    task dir, its lockfiles/tasks/<id>/ dir and its output dir; shared by tasks with the same
    shape) and a digest of every path's (size, mtime, inode). A check is one stat per path.
    """

    def __init__(self, project: Path, global_key: str, enabled: bool) -> None:
        self.path = project / CACHE_FILE
        self.global_key = global_key
        self.enabled = enabled
        self.layouts: list[tuple[tuple[str, ...], ...]] = []
        self.entries: dict[str, list[Any]] = {}  # task id -> [t, layout index, digest]
        self.saved_ns = 0
        self.changed = False
        if enabled:
            try:
                data = json.loads(self.path.read_bytes())
                if data.get("version") == CACHE_VERSION and data.get("key") == global_key:
                    self.layouts = [tuple(tuple(g) for g in lay) for lay in data["layouts"]]
                    self.entries = data["tasks"]
                    self.saved_ns = data["saved"]
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                self.layouts, self.entries = [], {}
        self._layout_index = {lay: i for i, lay in enumerate(self.layouts)}
        self._suffixes: dict[int, tuple[tuple[str, ...], ...]] = {}

    def fresh(self, task_id: str, task_dir: str, lock_dir: str, out_dir: str) -> bool:
        entry = self.entries.get(task_id) if self.enabled else None
        if not entry:
            return False
        t, index, digest = entry
        suffixes = self._suffixes.get(index)
        if suffixes is None:  # "" -> the dir itself, "a/b" -> "/a/b"
            suffixes = self._suffixes[index] = tuple(
                tuple(f"/{rel}" if rel else "" for rel in group) for group in self.layouts[index])
        values: list[int] = []
        stat = os.stat
        for base, sufs, limit in zip((task_dir, lock_dir, out_dir), suffixes,
                                     (t, t, self.saved_ns), strict=True):
            fine, coarse = limit - RACY_NS, limit - COARSE_RACY_NS
            for suf in sufs:
                try:
                    st = stat(base + suf)
                except (FileNotFoundError, NotADirectoryError):
                    values += MISSING
                    continue
                mtime = st.st_mtime_ns
                if mtime >= coarse and (mtime >= fine or not mtime % 1_000_000_000):
                    return False  # racily clean: cannot be told from a same-tick change
                values += (st.st_size, mtime, st.st_ino)
        return bool(_digest(values) == digest)

    def store(self, task_id: str, signed: _Signed) -> None:
        layout, digest = signed.entry()
        index = self._layout_index.get(layout)
        if index is None:
            index = self._layout_index[layout] = len(self.layouts)
            self.layouts.append(layout)
        self.entries[task_id] = [signed.t, index, digest]
        self.changed = True

    def save(self, keep: Iterable[str]) -> None:
        if not self.enabled:
            return
        keep_set = set(keep)
        if not self.changed and set(self.entries) == keep_set:
            return
        tasks = {k: v for k, v in sorted(self.entries.items()) if k in keep_set}
        used = sorted({v[1] for v in tasks.values()})
        renumber = {old: new for new, old in enumerate(used)}
        data = {"version": CACHE_VERSION, "key": self.global_key, "saved": time.time_ns(),
                "layouts": [self.layouts[i] for i in used],
                "tasks": {k: [v[0], renumber[v[1]], v[2]] for k, v in tasks.items()}}
        atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())


def _global_key(project: Path, templates: TemplateSet, out_dir: Path) -> str:
    config_text = (project / "gen.yaml").read_bytes()
    h = hashlib.sha256()
    h.update(__version__.encode() + b"\0" + config_text + b"\0")
    h.update(templates.fingerprint().encode() + b"\0")
    images = project / "lockfiles" / "images.lock"
    h.update(images.read_bytes() if images.exists() else b"")
    h.update(str(out_dir.resolve()).encode())
    return h.hexdigest()


@dataclass
class _TaskOutcome:
    """What rendering one task against the current output directory found."""

    task_id: str
    paths: Sequence[str]  # every output file of the task, relative to its directory
    new: bool  # the task directory did not exist; its files are staged
    changed: dict[str, RenderedFile]  # existing task: files whose bytes or mode differ
    unchanged: int
    signed: _Signed | None = None  # for the render cache


@dataclass(frozen=True)
class _Job:
    """What a worker needs to know (picklable; each worker loads the project once)."""

    project: str
    out_dir: str
    staging: str | None  # where brand-new task dirs are written (None: check/plan only)
    keep_files: bool  # plan mode: return every file's bytes, compare nothing
    sign: bool  # take render-cache signatures
    empty_out: bool = False  # out_dir does not exist yet: every task is new


class _Worker:
    """Loads config, locks and templates once per process, then renders task after task.

    Runs in worker processes for large datasets: each task's bytes are compared (and a new
    task's files written into the staging dir) where they were rendered, so only small
    results travel back. Nothing under out_dir except the staging dir is touched here.
    """

    def __init__(self, job: _Job) -> None:
        self.job = job
        project = Path(job.project)
        self.project = project
        self.config = load_dataset_config(project)
        self.locks = read_lockset(project)
        self.templates = TemplateSet(project / self.config.templates)
        self.umask = current_umask()
        self.lock_root = os.path.join(job.project, "lockfiles", "tasks")
        self.interned: dict[Any, Any] = {}  # equal tuples shared: pickled once per chunk
        self.dirs_of: dict[tuple[str, ...], list[str]] = {}

    def process(self, dirs: Sequence[Path]) -> list[_TaskOutcome]:
        """A chunk of tasks, stage by stage (list and load all, render all, then write): the
        code of each stage stays hot in the CPU's caches across the chunk."""
        # taken before any of these tasks is listed: a change made while rendering shows as
        # a new signature (or a racily clean one) next time
        signed_ns = time.time_ns()
        loaded = [self.load(d) for d in dirs]
        rendered = [render_task(task, self.config, self.locks, self.templates, listing)
                    for task, listing, _ in loaded]
        self.locks.forget_read_ahead()  # what a task's render did not need
        return [self.emit(signed_ns, task, listing, lock_sigs, files)
                for (task, listing, lock_sigs), files in zip(loaded, rendered, strict=True)]

    def load(self, d: Path) -> tuple[Task, TaskFiles, list[tuple[str, Sig]] | None]:
        """The task's spec, validated, and its directory listing (its input signatures)."""
        task_id = d.name
        listing = TaskFiles(os.fspath(d))
        if SPEC_FILE not in listing.stats:
            raise SpecError(f"task directory has no {SPEC_FILE}", file=f"tasks/{task_id}",
                            hint=f"add tasks/{task_id}/{SPEC_FILE} or remove the directory")
        lock_sigs, lock_data = _read_locks(f"{self.lock_root}/{task_id}")
        self.locks.read_ahead(task_id, lock_data)
        task = load_task(d, self.config.defaults, self.project, listing)
        return task, listing, lock_sigs if self.job.sign else None

    def emit(self, signed_ns: int, task: Task, listing: TaskFiles,
             lock_sigs: list[tuple[str, Sig]] | None, files: dict[str, RenderedFile]
             ) -> _TaskOutcome:
        """Write a new task's files into the staging dir, or compare an existing task's."""
        job = self.job
        key = tuple(sorted(files))
        paths: tuple[str, ...] = self.interned.setdefault(key, key)
        if job.keep_files:
            return _TaskOutcome(task.id, paths, False, files, 0)
        tdir = os.path.join(job.out_dir, task.id)
        out_sigs: list[tuple[str, Sig]] = []
        if job.empty_out or os.path.islink(tdir) or not os.path.isdir(tdir):
            if job.staging is not None:
                root = os.path.join(job.staging, task.id)
                dirs = self.dirs_of.get(paths)
                if dirs is None:
                    dirs = self.dirs_of[paths] = sorted(
                        {sub[:i] for sub in paths for i, c in enumerate(sub) if c == "/"})
                umask = self.umask
                make_dir(root, DIR_MODE, umask)
                for sub in dirs:  # parents sort before their children
                    make_dir(f"{root}/{sub}", DIR_MODE, umask)
                for sub in paths:
                    rf = files[sub]
                    out_sigs.append((sub, _write_staged(f"{root}/{sub}", rf.data, rf.mode,
                                                        umask)))
                # directories last: each file written changed its directory's mtime
                out_sigs.append(("", _sig(os.stat(root))))
                out_sigs.extend((sub, _sig(os.stat(f"{root}/{sub}"))) for sub in dirs)
                out_sigs.sort()
            outcome = _TaskOutcome(task.id, paths, True, {}, 0)
        else:
            changed: dict[str, RenderedFile] = {}
            unchanged = 0
            for sub in paths:
                rf = files[sub]
                target = f"{tdir}/{sub}"
                try:
                    st = os.stat(target)
                    same = (st.st_mode & 0o777) == rf.mode and st.st_size == len(rf.data)
                    if same:
                        same = read_file(target, st.st_size) == rf.data
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    same = False
                if same:
                    unchanged += 1
                else:
                    changed[sub] = rf
            outcome = _TaskOutcome(task.id, paths, False, changed, unchanged)
        if job.sign:
            outcome.signed = _Signed(signed_ns, listing.signatures(), lock_sigs,
                                     out_sigs if outcome.new else None)
            if outcome.new:
                outcome.signed.seal(self.interned)
        return outcome


_STAGED_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _write_staged(path: str, data: bytes, mode: int, umask: int) -> Sig:
    """Create a new file in the staging dir (O_EXCL: never an existing file); its signature.

    The hot loop of a large render: open, write, fstat, close (and fchmod only when the
    umask would change the mode).
    """
    fd = os.open(path, _STAGED_FLAGS, mode)
    try:
        written = os.write(fd, data)
        if written != len(data):
            write_all(fd, memoryview(data)[written:])
        if mode & umask:
            os.fchmod(fd, mode)
        st = os.fstat(fd)
        return (st.st_size, st.st_mtime_ns, st.st_ino)
    finally:
        os.close(fd)


_WORKER: _Worker | None = None


def _init_worker(job: _Job) -> None:
    global _WORKER
    _tune_gc()
    _WORKER = _Worker(job)


# Rendering allocates many small objects that live until the render ends (outcomes,
# signatures); with the default thresholds the cyclic GC rescans them over and over
# (about a third of a 10,000-task render). Objects that exist when a render starts are
# frozen out of the scans and the young generation is collected less often.
GC_THRESHOLDS = (50_000, 20, 100)


def _tune_gc() -> tuple[int, int, int]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return old


@contextlib.contextmanager
def _gc_tuned() -> Iterator[None]:
    old = _tune_gc()
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _work(dirs: list[Path]) -> list[_TaskOutcome]:
    assert _WORKER is not None
    return _WORKER.process(dirs)


def _run_tasks(job: _Job, dirs: list[Path], *, jobs: int | None,
               progress: Callable[[int], None] | None) -> list[_TaskOutcome]:
    if jobs is None:
        # one more worker than cores: creating files blocks on the file system now and then
        # (inode tables read from disk), and the spare worker keeps the cores busy meanwhile
        cores = os.cpu_count() or 1
        jobs = cores + 1 if cores > 1 else 1
    if not dirs:
        return []
    if len(dirs) < 400 or jobs <= 1:
        worker = _Worker(job)
        outcomes = []
        step = 100
        for i in range(0, len(dirs), step):
            outcomes.extend(worker.process(dirs[i:i + step]))
            if progress:
                progress(len(dirs[i:i + step]))
        return outcomes
    chunk = max(50, min(250, len(dirs) // (jobs * 8)))
    # the last tasks go out in small parts, so no worker idles while another ends a big one
    head = len(dirs) - min(len(dirs) // 4, jobs * chunk)
    parts = [dirs[i:min(i + chunk, head)] for i in range(0, head, chunk)] + \
        [dirs[i:i + 25] for i in range(head, len(dirs), 25)]
    outcomes = []
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(job,)) as pool:
        for part in pool.map(_work, parts):
            outcomes.extend(part)
            if progress:
                progress(len(part))
    return outcomes


_FRESH: tuple[_Cache, list[str], str, str, str] | None = None
FORK_CHECK_MIN = 2000  # below this, forking costs more than the stats it spreads


def _fresh_part(i: int, n: int) -> list[str]:
    assert _FRESH is not None
    cache, names, task_root, lock_root, out_root = _FRESH
    return [name for name in names[i::n]
            if cache.fresh(name, f"{task_root}/{name}", f"{lock_root}/{name}",
                           f"{out_root}/{name}")]


def _fresh_names(cache: _Cache, names: list[str], task_root: str, lock_root: str,
                 out_root: str, jobs: int | None) -> set[str]:
    """The tasks whose cache entry is still valid (one stat per signed path).

    Large datasets are checked by forked processes, which inherit the loaded cache.
    """
    global _FRESH
    if not cache.enabled or not cache.entries:
        return set()
    jobs = jobs if jobs is not None else (os.cpu_count() or 1)
    _FRESH = (cache, names, task_root, lock_root, out_root)
    try:
        if jobs > 1 and len(names) >= FORK_CHECK_MIN and \
                "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                parts = pool.starmap(_fresh_part, [(i, jobs) for i in range(jobs)])
            return {name for part in parts for name in part}
        return set(_fresh_part(0, 1))
    finally:
        _FRESH = None


def plan_render(project: Path, *, only: Sequence[str] | None = None, jobs: int | None = 1,
                progress: Callable[[int], None] | None = None) -> RenderPlan:
    """Render every task in memory (no output dir involved). Raises on the first bad input."""
    project = project.resolve()
    dirs = discover_tasks(project, only, check_specs=False)
    job = _Job(os.fspath(project), os.fspath(project / "dataset"), None, True, False)
    outcomes = _run_tasks(job, dirs, jobs=jobs, progress=progress)
    plan = RenderPlan(tasks=[d.name for d in dirs])
    for o in outcomes:
        for sub, rf in o.changed.items():
            plan.files[f"{o.task_id}/{sub}"] = rf
    return plan


def _existing_files(out_dir: Path, task_ids: Iterable[str] | None) -> set[str]:
    """Relative paths of files currently under out_dir (all tasks, or only these)."""
    if not out_dir.is_dir():
        return set()
    found: set[str] = set()
    roots = [out_dir / t for t in task_ids] if task_ids is not None else \
        list(out_dir.iterdir())
    for root in roots:
        if root.is_dir() and not root.is_symlink():
            for dirpath, _dirs, names in os.walk(root):
                rel_dir = Path(dirpath).relative_to(out_dir).as_posix()
                for n in names:
                    found.add(f"{rel_dir}/{n}")
        elif root.exists() or root.is_symlink():
            found.add(root.relative_to(out_dir).as_posix())
    return found


STAGING = state.RENDER_STAGING


def _staging_dir(out_dir: Path) -> tuple[Path, bool]:
    """Where new task dirs are written first, and whether it becomes out_dir as a whole.

    A first render (no output directory yet) writes a sibling directory and renames it into
    place once; otherwise each new task directory is renamed from out_dir/.gen-staging.
    """
    if out_dir.exists():
        return out_dir / STAGING, False
    return out_dir.parent / f".{out_dir.name}{STAGING}", True


def _commit(project: Path, out_dir: Path, tasks: list[str], reused: set[str],
            outcomes: list[_TaskOutcome], cache: _Cache, staging: Path, whole: bool, *,
            check: bool, prune: bool) -> RenderResult:
    """Make out_dir match the outcomes: replace changed files atomically, rename staged task
    dirs into place, remove files and directories that are no longer rendered."""
    result = RenderResult(tasks=len(tasks), cached_tasks=len(reused))
    existing = _existing_files(out_dir, [o.task_id for o in outcomes if not o.new])
    if prune and out_dir.is_dir():
        wanted = set(tasks)
        with os.scandir(out_dir) as it:
            strays = sorted(e.name for e in it if e.name not in wanted and e.name != STAGING)
        for name in strays:
            existing |= _existing_files(out_dir, [name]) or {name}
    wanted_files: set[str] = set()  # in task dirs that existed (new ones hold nothing else)
    for o in outcomes:
        if o.new:
            result.written.extend(f"{o.task_id}/{p}" for p in o.paths)
            if not whole and os.path.lexists(out_dir / o.task_id):
                existing.add(o.task_id)  # a file or link where the task dir goes: replaced
            continue
        wanted_files.update(f"{o.task_id}/{p}" for p in o.paths)
        result.unchanged += o.unchanged
        for sub in sorted(o.changed):
            rel = f"{o.task_id}/{sub}"
            result.written.append(rel)
            if not check:
                rf = o.changed[sub]
                atomic_write(out_dir / rel, rf.data, rf.mode, dir_mode=DIR_MODE)
    for rel in sorted(existing):
        if rel in wanted_files or rel.partition("/")[0] in reused:
            continue
        result.removed.append(rel)
        if not check:
            target = out_dir / rel
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
    if not check:
        if whole:
            if outcomes:
                os.rename(staging, out_dir)
        else:
            for o in outcomes:
                if o.new:
                    os.rename(staging / o.task_id, out_dir / o.task_id)
            shutil.rmtree(staging, ignore_errors=True)
        if result.removed:
            _remove_empty_dirs(out_dir)
        for o in outcomes:
            if o.signed is not None:
                if o.signed.layout is None and o.signed.outputs is None:
                    # an existing task dir, signed as it is now
                    o.signed.outputs = _tree_sigs(os.fspath(out_dir / o.task_id))
                cache.store(o.task_id, o.signed)
        cache.save(tasks)
    result.written.sort()
    result.removed.sort()
    return result


def _remove_empty_dirs(out_dir: Path) -> None:
    if not out_dir.is_dir():
        return
    for dirpath, _dirs, _files in os.walk(out_dir, topdown=False):
        if Path(dirpath) != out_dir and not os.listdir(dirpath):
            os.rmdir(dirpath)


def render(project: Path, out_dir: Path | None = None, *, check: bool = False,
           only: Sequence[str] | None = None, use_cache: bool = True, jobs: int | None = None,
           progress: Callable[[int], None] | None = None) -> RenderResult:
    """Render the project into out_dir (default: <project>/dataset).

    Every task is rendered and linted before anything under out_dir changes: a bad input
    anywhere raises with the previous output untouched.
    """
    with _gc_tuned():
        return _render(project, out_dir, check=check, only=only, use_cache=use_cache,
                       jobs=jobs, progress=progress)


def _render(project: Path, out_dir: Path | None, *, check: bool,
            only: Sequence[str] | None, use_cache: bool, jobs: int | None,
            progress: Callable[[int], None] | None) -> RenderResult:
    project = project.resolve()
    out = (out_dir or project / "dataset").resolve()
    config = load_dataset_config(project)
    templates = TemplateSet(project / config.templates)
    names = [d.name for d in discover_tasks(project, only, check_specs=False)]
    cache = _Cache(project, _global_key(project, templates, out),
                   use_cache and not check and only is None)
    out_s = os.fspath(out)
    out_exists = out.exists()
    # with no output dir, no task's outputs can still be as signed: nothing to check
    reused = _fresh_names(cache, names, os.fspath(project / "tasks"),
                          os.fspath(project / "lockfiles" / "tasks"), out_s, jobs) \
        if out_exists else set()
    todo = [project / "tasks" / n for n in names if n not in reused]
    if progress and reused:
        progress(len(reused))
    staging, whole = _staging_dir(out)
    if not check and todo:
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        make_dir(staging, DIR_MODE)  # a first render's staging dir becomes out_dir
    job = _Job(os.fspath(project), out_s, None if check else os.fspath(staging), False,
               cache.enabled, empty_out=not out_exists)
    try:
        outcomes = _run_tasks(job, todo, jobs=jobs, progress=progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _commit(project, out, names, reused, outcomes, cache, staging, whole, check=check,
                   prune=only is None)
