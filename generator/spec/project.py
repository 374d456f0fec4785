"""Dataset config (`gen.yaml`) and task specs (`tasks/<id>/task.spec.yaml`).

Parsing is strict: unknown keys, wrong types, missing fields and bad task ids are each an
`SpecError` (exit 2) whose one line names the file, the line, the field and the fix.

Loading uses libyaml when present (fast path); only when a spec is invalid is the file
composed again to find the line of the offending node.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from stat import S_ISDIR, S_ISLNK
from typing import Any, ClassVar, Literal

import yaml

from generator.core.errors import SpecError
from generator.core.fsutil import read_file, read_text
from generator.lock.lockfiles import SHA1_RE

__all__ = [
    "DATASET_FILE",
    "SPEC_FILE",
    "TASK_ID_RE",
    "Author",
    "BaseDecl",
    "DatasetConfig",
    "Defaults",
    "Environment",
    "FileEntry",
    "Project",
    "Resources",
    "Source",
    "SweTask",
    "Task",
    "TerminalTask",
    "Timeouts",
    "load_dataset_config",
    "load_project",
    "load_task",
    "parse_task",
    "rel_path",
]

DATASET_FILE = "gen.yaml"
SPEC_FILE = "task.spec.yaml"
TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*\Z")
_NAME_RE = TASK_ID_RE
_PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?\Z")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_APT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?\Z")
_REQ_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?(\s*(==|>=|<=|~=|!=|<|>)\s*[^\s@]+)?\Z")
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")

DIFFICULTIES = ("easy", "medium", "hard")
LOG_PARSERS = (
    "parse_log_pytest",
    "parse_log_pytest_options",
    "parse_log_pytest_v2",
    "parse_log_django",
    "parse_log_sympy",
    "parse_log_seaborn",
    "parse_log_matplotlib",
)
EVAL_TYPES = ("pass_and_fail", "fail_only")
# Paths inside a rendered task dir that gen owns; a spec's files may not land on them.
RESERVED_DIRS = ("tests", "vendor", "gen")


# --------------------------------------------------------------------------------------
# Typed model
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    name: str = "unknown"
    email: str = "unknown"


@dataclass(frozen=True)
class Timeouts:
    agent_sec: float = 600.0
    test_sec: float = 120.0


@dataclass(frozen=True)
class Resources:
    cpus: float = 1.0
    memory_mb: int = 2048


@dataclass(frozen=True)
class Environment:
    """What goes into the agent image: every moving part here is pinned by a lock entry."""

    base_image: str
    apt: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    workdir: str = "/app"


@dataclass(frozen=True)
class FileEntry:
    """A file or directory of the task copied into the agent image."""

    src: str  # relative to the task dir
    dest: str  # absolute path in the image
    mode: int | None = None


@dataclass(frozen=True)
class Source:
    """Where an SWE task's repository comes from: a git repo/bundle or an archive."""

    type: Literal["git", "archive"]
    location: str  # path relative to the project, or an http(s)/git URL


@dataclass(frozen=True)
class _TaskBase:
    id: str
    path: Path  # the task directory
    spec_file: Path
    kind: str
    difficulty: str
    category: str
    tags: tuple[str, ...]
    author: Author
    timeouts: Timeouts
    resources: Resources
    environment: Environment
    record_asciinema: bool


@dataclass(frozen=True)
class TerminalTask(_TaskBase):
    instruction: str
    files: tuple[FileEntry, ...]
    tests_dir: str
    test_command: str
    solution: str
    solution_text: str  # the solution file's text (read once, at load)


@dataclass(frozen=True)
class SweTask(_TaskBase):
    problem_statement: str
    hints: str
    repo: str
    version: str
    source: Source
    base_commit: str
    environment_setup_commit: str
    patch: str  # the gold patch text
    test_patch: str
    patch_file: str
    test_patch_file: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    test_command: str
    log_parser: str
    eval_type: str

    @property
    def instruction(self) -> str:
        return self.problem_statement


Task = TerminalTask | SweTask


@dataclass(frozen=True)
class Defaults:
    author: Author = Author()
    timeouts: Timeouts = Timeouts()
    resources: Resources = Resources()
    base_image: str | None = None
    apt: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    category: str = "software_engineering"


DEBIAN_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SNAPSHOT_BASE = "https://snapshot.debian.org"
BASE_VARIANTS = ("minbase", "essential", "apt", "required", "important", "standard")


@dataclass(frozen=True)
class BaseDecl:
    """A base image gen builds itself (gen.yaml `bases:`): a locked derivation of Debian
    packages. `ref` is the tag specs use (defaults.base_image / environment.base_image)."""

    ref: str
    suite: str
    variant: str = "minbase"
    include: tuple[str, ...] = ()
    mirror: str = DEBIAN_MIRROR
    security_mirror: str = SECURITY_MIRROR

    def sources(self) -> list[str]:
        """The apt sources the closure is resolved from (and the image's sources.list)."""
        return [f"deb {self.mirror} {self.suite} main",
                f"deb {self.mirror} {self.suite}-updates main",
                f"deb {self.security_mirror} {self.suite}-security main"]


# gen.yaml `engine`: "auto" or a build engine of generator.image.engines (ENGINES; a test keeps the
# two equal: spec stays free of the engine code, which the render path never needs)
BUILD_ENGINES = ("auto", "buildah", "docker", "buildx")


@dataclass(frozen=True)
class DatasetConfig:
    path: Path  # the project dir
    name: str
    version: str
    source_date_epoch: int
    platforms: tuple[str, ...]
    registry: str | None
    templates: str
    defaults: Defaults = field(default_factory=Defaults)
    engine: str = "auto"  # the build engine: auto, or one of generator.image.engines.ENGINES
    bases: tuple[BaseDecl, ...] = ()  # the base images gen builds from a base lock
    # where snapshot-style archive URLs of locked .debs point (snapshot.debian.org layout)
    snapshot_base: str = SNAPSHOT_BASE

    def base(self, ref: str) -> BaseDecl | None:
        return next((b for b in self.bases if b.ref == ref), None)

    @property
    def artifact_cache(self) -> str | None:
        """The registry repository holding the project's artifact cache (gen cache push)."""
        return f"{self.registry}/artifacts" if self.registry else None


@dataclass(frozen=True)
class Project:
    config: DatasetConfig
    tasks: tuple[Task, ...]

    @property
    def root(self) -> Path:
        return self.config.path


# --------------------------------------------------------------------------------------
# What is in a task directory: listed once, asked many times
# --------------------------------------------------------------------------------------


class TaskFiles:
    """Every file and directory below a task directory, listed once with their stats.

    Spec checks (does `src` exist, is the tests dir empty), the render's copies and the
    render cache's signatures all ask this listing instead of the file system again.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = os.fspath(root)
        self.stats: dict[str, os.stat_result] = {"": os.stat(self.root)}
        self.links: set[str] = set()
        stats = self.stats
        stack = [""]
        while stack:
            d = stack.pop()
            prefix = f"{d}/" if d else ""
            with os.scandir(f"{self.root}/{d}" if d else self.root) as it:
                for e in it:
                    rel = prefix + e.name
                    st = stats[rel] = e.stat(follow_symlinks=False)
                    mode = st.st_mode
                    if S_ISLNK(mode):
                        self.links.add(rel)
                    elif S_ISDIR(mode):
                        stack.append(rel)

    def _st(self, rel: str) -> os.stat_result | None:
        if rel in self.links:  # as the file system would answer: follow the link
            try:
                return os.stat(os.path.join(self.root, rel))
            except OSError:
                return None
        return self.stats.get(rel)

    def exists(self, rel: str) -> bool:
        return self._st(rel) is not None

    def is_file(self, rel: str) -> bool:
        st = self._st(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_dir(self, rel: str) -> bool:
        st = self._st(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def has_entries(self, rel: str) -> bool:
        prefix = rel + "/"
        return any(k.startswith(prefix) for k in self.stats)

    def files_under(self, rel: str) -> list[str]:
        """Regular files below directory `rel`, sorted; a symlink anywhere is refused."""
        prefix = rel + "/"
        found = []
        for k, st in self.stats.items():
            if k.startswith(prefix):
                if k in self.links:
                    raise OSError(f"{os.path.join(self.root, k)}: symlinks are not allowed "
                                  "in task inputs")
                if stat.S_ISREG(st.st_mode):
                    found.append(k)
        found.sort()
        return found

    def read_bytes(self, rel: str) -> bytes:
        st = self.stats.get(rel)
        return read_file(f"{self.root}/{rel}", st.st_size if st is not None else None)

    def read_text(self, rel: str) -> str:
        """The file's text, as `open(..., encoding="utf-8").read()` gives it."""
        st = self.stats.get(rel)
        return read_text(f"{self.root}/{rel}", st.st_size if st is not None else None)

    def signatures(self) -> list[tuple[str, tuple[int, int, int]]]:
        """(relative path, (size, mtime_ns, inode)) of every entry, the root as ""."""
        return sorted((rel, (st.st_size, st.st_mtime_ns, st.st_ino))
                      for rel, st in self.stats.items())


# --------------------------------------------------------------------------------------
# YAML loading with line numbers on demand
# --------------------------------------------------------------------------------------

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


class _SpecLoader(_Loader):  # type: ignore[misc]
    """The safe loader, with plain scalars' tags remembered per distinct short value.

    Resolving a tag runs PyYAML's resolver in Python for every node of every spec, and
    specs repeat the same short scalars (keys, package names) again and again. With no path
    resolver registered (checked on every node), a tag depends only on the node kind, the
    value and the implicit flags, and the path bookkeeping is a no-op.
    """

    _plain: ClassVar[dict[str, str]] = {}

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        if self.yaml_path_resolvers:
            super().descend_resolver(current_node, current_index)

    def ascend_resolver(self) -> None:
        if self.yaml_path_resolvers:
            super().ascend_resolver()

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)
        if kind is not yaml.ScalarNode:
            return _MAP_TAG if kind is yaml.MappingNode else _SEQ_TAG
        if not implicit[0]:
            return _STR_TAG  # quoted, or a block scalar
        tag = self._plain.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= 64:
                if len(self._plain) >= 8192:
                    self._plain.clear()
                self._plain[value] = tag
        return tag


class _Irregular(Exception):
    """A document the fast constructor leaves to PyYAML's (merge keys, odd keys, recursion)."""


def _load_yaml(text: str) -> Any:
    """`yaml.load(text, Loader=_Loader)`, with the common node kinds built directly.

    PyYAML's SafeConstructor spends more time dispatching than parsing on small specs.
    Plain strings, mappings and sequences are built here; every other tag (ints, bools,
    null, floats, timestamps...) goes through PyYAML's own constructor, and so does the
    whole document when it uses merge keys, non-scalar keys or recursive aliases. An alias
    is built once and shared, as PyYAML does.
    """
    loader = _SpecLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        built: dict[int, Any] = {}
        busy: set[int] = set()

        def build(n: yaml.Node) -> Any:
            tag = n.tag
            if tag == _STR_TAG and isinstance(n, yaml.ScalarNode):
                return n.value
            key = id(n)
            if key in built:
                return built[key]
            if tag == _MAP_TAG and isinstance(n, yaml.MappingNode):
                if key in busy:
                    raise _Irregular
                busy.add(key)
                out: dict[Any, Any] = {}
                for k, v in n.value:
                    if not (isinstance(k, yaml.ScalarNode) and k.tag == _STR_TAG):
                        raise _Irregular  # merge keys, non-string keys: PyYAML's rules
                    out[k.value] = build(v)
                busy.discard(key)
            elif tag == _SEQ_TAG and isinstance(n, yaml.SequenceNode):
                if key in busy:
                    raise _Irregular
                busy.add(key)
                out_list = [build(x) for x in n.value]
                busy.discard(key)
                built[key] = out_list
                return out_list
            else:
                value = loader.construct_object(n, deep=True)
                built[key] = value
                return value
            built[key] = out
            return out

        try:
            return build(node)
        except _Irregular:
            return loader.construct_document(node)
    finally:
        loader.dispose()


def rel_path(path: Path, root: Path | None) -> str:
    """`path` as shown in messages: POSIX and relative to `root` when inside it."""
    if root is not None:
        p, r = os.fspath(path), os.fspath(root)
        if p.startswith(r) and p[len(r):len(r) + 1] == "/":
            return p[len(r) + 1:]
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


def _line_of(text: str, fpath: Sequence[str | int]) -> int | None:
    """1-based line of the node at `fpath` (key names / list indexes), or of its parent."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None
    line = None if node is None else node.start_mark.line + 1
    for part in fpath:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for knode, vnode in node.value:
                if knode.value == part:
                    line = knode.start_mark.line + 1
                    node = vnode
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


class _Ctx:
    """Carries the file being parsed so errors can name it, its line and the field."""

    def __init__(self, file: Path, text: str, root: Path | None) -> None:
        self.file = file
        self.text = text
        self.root = root

    @property
    def shown(self) -> str:  # only an error needs it
        return rel_path(self.file, self.root)

    def fail(self, fpath: Sequence[str | int], message: str, fix: str) -> SpecError:
        dotted = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in fpath)
        dotted = dotted.replace(".[", "[")
        return SpecError(
            message,
            file=self.shown,
            line=_line_of(self.text, fpath) if fpath else None,
            field=dotted or None,
            hint=fix,
        )


def _read_yaml(file: Path, root: Path | None, size: int | None = None) -> tuple[_Ctx, Any]:
    try:
        text = read_text(os.fspath(file), size)
    except (FileNotFoundError, IsADirectoryError):
        shown = rel_path(file, root)
        raise SpecError("file not found", file=shown, hint=f"create {shown}") from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", file=rel_path(file, root),
                        hint="save the file as UTF-8") from None
    try:
        data = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise SpecError(
            f"invalid YAML: {exc.problem}",
            file=rel_path(file, root),
            line=mark.line + 1 if mark else None,
            hint="fix the YAML syntax",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", file=rel_path(file, root),
                        hint="fix the YAML syntax") from None
    return _Ctx(file, text, root), data


# --------------------------------------------------------------------------------------
# Field readers
# --------------------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a mapping"}


class _Map:
    """A mapping under validation: remembers which keys were read to reject the rest."""

    def __init__(self, ctx: _Ctx, data: Any, fpath: tuple[str | int, ...], what: str) -> None:
        if not isinstance(data, dict):
            raise ctx.fail(fpath, f"{what} must be a mapping, got {_kind(data)}",
                           f"write {what} as 'key: value' lines")
        self.ctx = ctx
        self.data: dict[Any, Any] = data
        self.fpath = fpath
        self.allowed: list[str] = []

    def _path(self, key: str) -> tuple[str | int, ...]:
        return (*self.fpath, key)

    def has(self, key: str) -> bool:
        self.allowed.append(key)
        return key in self.data and self.data[key] is not None

    def raw(self, key: str) -> Any:
        self.allowed.append(key)
        return self.data.get(key)

    def text(self, key: str, *, required: bool = False, default: str = "",
            pattern: re.Pattern[str] | None = None, choices: Sequence[str] | None = None,
            fix: str | None = None, nonempty: bool = False) -> str:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.ctx.fail(self.fpath, f"missing required field '{key}'",
                                    fix or f"add '{key}:' to {self.ctx.shown}")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.ctx.fail(self._path(key), f"must be a string, got {_kind(value)}",
                                fix or f"write '{key}' as a quoted string")
        if not isinstance(value, str):
            raise self.ctx.fail(self._path(key), f"must be a string, got {_kind(value)}",
                                f"quote the value: {key}: \"{value}\"")
        if choices is not None and value not in choices:
            raise self.ctx.fail(self._path(key), f"'{value}' is not one of {', '.join(choices)}",
                                fix or f"set '{key}' to one of {', '.join(choices)}")
        if pattern is not None and not pattern.match(value):
            raise self.ctx.fail(self._path(key), f"'{value}' does not match {pattern.pattern}",
                                fix or f"change '{key}' to match {pattern.pattern}")
        if nonempty and not value.strip():
            raise self.ctx.fail(self._path(key), "must not be empty",
                                fix or f"write a value for '{key}'")
        return value

    def number(self, key: str, *, default: float, minimum: float = 0.0,
               integer: bool = False) -> float:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            want = "an integer" if integer else "a number"
            raise self.ctx.fail(self._path(key), f"must be {want}, got {_kind(value)}",
                                f"write '{key}' as {want}, e.g. {key}: {int(default)}")
        number = float(value)
        if number <= minimum and not (minimum == 0.0 and integer and number == 0):
            raise self.ctx.fail(self._path(key), f"must be greater than {minimum:g}, got {value}",
                                f"set '{key}' to a positive value")
        return number

    def boolean(self, key: str, *, default: bool) -> bool:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.ctx.fail(self._path(key), f"must be true or false, got {_kind(value)}",
                                f"write '{key}: true' or '{key}: false'")
        return value

    def str_list(self, key: str, *, item_pattern: re.Pattern[str] | None = None,
                 what: str = "item", fix: str | None = None,
                 unique: bool = True) -> tuple[str, ...]:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return ()
        value = self.data[key]
        if not isinstance(value, list):
            raise self.ctx.fail(self._path(key), f"must be a list, got {_kind(value)}",
                                f"write '{key}' as a YAML list: {key}: [a, b]")
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str):
                raise self.ctx.fail((*self._path(key), i),
                                    f"{what} must be a string, got {_kind(item)}",
                                    f"quote item {i} of '{key}'")
            if item_pattern is not None and not item_pattern.match(item):
                raise self.ctx.fail((*self._path(key), i), f"invalid {what} '{item}'",
                                    fix or f"write {what}s like {item_pattern.pattern}")
            if unique and item in out:
                raise self.ctx.fail((*self._path(key), i), f"duplicate {what} '{item}'",
                                    f"remove the second '{item}' from '{key}'")
            out.append(item)
        return tuple(out)

    def str_map(self, key: str, *, key_pattern: re.Pattern[str]) -> tuple[tuple[str, str], ...]:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return ()
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.ctx.fail(self._path(key), f"must be a mapping, got {_kind(value)}",
                                f"write '{key}' as NAME: value lines")
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            if not isinstance(k, str) or not key_pattern.match(k):
                raise self.ctx.fail((*self._path(key), str(k)), f"invalid name '{k}'",
                                    f"use names matching {key_pattern.pattern}")
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise self.ctx.fail((*self._path(key), k), f"must be a string, got {_kind(v)}",
                                    f"quote the value of {k}")
            out.append((k, str(v)))
        return tuple(sorted(out))

    def sub(self, key: str, what: str) -> _Map | None:
        self.allowed.append(key)
        if key not in self.data or self.data[key] is None:
            return None
        return _Map(self.ctx, self.data[key], self._path(key), what)

    def done(self) -> None:
        """Reject keys that were never read: a typo must not pass silently."""
        for key in self.data:
            if key not in self.allowed:
                near = _closest(str(key), self.allowed)
                fix = f"did you mean '{near}'?" if near else (
                    f"remove it; allowed keys here: {', '.join(sorted(set(self.allowed)))}")
                raise self.ctx.fail((*self.fpath, str(key)), f"unknown key '{key}'", fix)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _closest(word: str, options: Sequence[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, list(dict.fromkeys(options)), n=1, cutoff=0.75)
    return found[0] if found else None


_PLAIN_REL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*\Z")


def _rel_path_check(m: _Map, key: str, value: str, fpath: tuple[str | int, ...]) -> str:
    if _PLAIN_REL_RE.match(value) and ".." not in value.split("/"):
        return value  # already normal: what PurePosixPath(value).as_posix() would give
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts or "\\" in value or not value.strip():
        raise m.ctx.fail(fpath, f"'{value}' must be a relative path inside the task directory",
                         f"write '{key}' relative to the task dir, without '..'")
    return p.as_posix()


# --------------------------------------------------------------------------------------
# gen.yaml
# --------------------------------------------------------------------------------------


def _author(m: _Map | None, default: Author) -> Author:
    if m is None:
        return default
    a = Author(name=m.text("name", default=default.name),
               email=m.text("email", default=default.email))
    m.done()
    return a


def _timeouts(m: _Map | None, default: Timeouts) -> Timeouts:
    if m is None:
        return default
    t = Timeouts(agent_sec=m.number("agent_sec", default=default.agent_sec),
                 test_sec=m.number("test_sec", default=default.test_sec))
    m.done()
    return t


def _resources(m: _Map | None, default: Resources) -> Resources:
    if m is None:
        return default
    r = Resources(cpus=m.number("cpus", default=default.cpus),
                  memory_mb=int(m.number("memory_mb", default=default.memory_mb, integer=True)))
    m.done()
    return r


_SPACE_RE = re.compile(r"\s")


def _image_ref_check(m: _Map, key: str, value: str) -> str:
    if not value or _SPACE_RE.search(value):
        raise m.ctx.fail((*m.fpath, key), f"'{value}' is not an image reference",
                         "write it as registry/repository:tag")
    return value


_SUITE_RE = re.compile(r"^[a-z][a-z0-9-]*\Z")
_URL_RE = re.compile(r"^(https?|file)://\S+\Z")


def _bases(m: _Map | None) -> tuple[BaseDecl, ...]:
    if m is None:
        return ()
    out: list[BaseDecl] = []
    for ref in list(m.data):
        if not isinstance(ref, str):
            raise m.ctx.fail((*m.fpath, str(ref)), f"'{ref}' is not an image reference",
                             "name each base by the tag specs use, e.g. "
                             "127.0.0.1:5000/gen/debian:bookworm")
        _image_ref_check(m, ref, ref)
        if "@" in ref:
            raise m.ctx.fail((*m.fpath, ref), f"base '{ref}' is pinned by digest",
                             "declare a base by its tag; gen lock pins its digest")
        b = m.sub(ref, f"base '{ref}'")
        assert b is not None
        decl = BaseDecl(
            ref=ref,
            suite=b.text("suite", required=True, pattern=_SUITE_RE,
                         fix="set 'suite' to a Debian suite, e.g. bookworm"),
            variant=b.text("variant", default="minbase", choices=BASE_VARIANTS),
            include=tuple(sorted(b.str_list("include", item_pattern=_APT_NAME_RE,
                                            what="Debian package name"))),
            mirror=b.text("mirror", default=DEBIAN_MIRROR, pattern=_URL_RE,
                          fix="write the mirror as a URL, e.g. http://deb.debian.org/debian"
                          ).rstrip("/"),
            security_mirror=b.text("security_mirror", default=SECURITY_MIRROR, pattern=_URL_RE,
                                   fix="write it as a URL, e.g. "
                                   "http://deb.debian.org/debian-security").rstrip("/"),
        )
        b.done()
        out.append(decl)
    return tuple(sorted(out, key=lambda d: d.ref))


def load_dataset_config(project: Path) -> DatasetConfig:
    file = project / DATASET_FILE
    ctx, data = _read_yaml(file, project)
    m = _Map(ctx, data, (), DATASET_FILE)
    name = m.text("name", required=True, pattern=_NAME_RE,
                 fix="use a lowercase name: letters, digits, '.', '_' and '-'")
    version = m.text("version", required=True, nonempty=True)
    if not m.has("source_date_epoch"):
        raise ctx.fail((), "missing required field 'source_date_epoch'",
                       "add 'source_date_epoch: <unix seconds>' (e.g. the last commit's time)")
    sde = int(m.number("source_date_epoch", default=0, integer=True))
    platforms = m.str_list("platforms", item_pattern=_PLATFORM_RE, what="platform",
                           fix="write platforms as os/arch, e.g. linux/amd64") or ("linux/amd64",)
    registry = m.text("registry", default="") or None
    engine = m.text("engine", default="auto", choices=BUILD_ENGINES,
                    fix=f"set 'engine' to one of {', '.join(BUILD_ENGINES)} (digests depend on "
                    "the engine: pin the one your images were built with)")
    templates = m.text("templates", default="templates")
    _rel_path_check(m, "templates", templates, ("templates",))
    bases = _bases(m.sub("bases", "bases"))
    if bases and len(platforms) > 1:
        # gen builds a declared base natively (mmdebstrap on this machine's architecture)
        raise ctx.fail(("bases",), f"a declared base is built for one platform, but the "
                       f"dataset lists {len(platforms)} ({', '.join(platforms)})",
                       "keep one entry in 'platforms', or build the multi-platform base "
                       "elsewhere, push it and use it as an undeclared base_image")
    snapshot_base = m.text("snapshot_base", default=SNAPSHOT_BASE, pattern=_URL_RE,
                           fix="write it as a URL, e.g. https://snapshot.debian.org").rstrip("/")
    dm = m.sub("defaults", "defaults")
    defaults = Defaults()
    if dm is not None:
        base = dm.text("base_image", default="") or None
        if base:
            _image_ref_check(dm, "base_image", base)
        defaults = Defaults(
            author=_author(dm.sub("author", "author"), Author()),
            timeouts=_timeouts(dm.sub("timeouts", "timeouts"), Timeouts()),
            resources=_resources(dm.sub("resources", "resources"), Resources()),
            base_image=base,
            apt=dm.str_list("apt", item_pattern=_APT_NAME_RE, what="Debian package name"),
            python=dm.str_list("python", item_pattern=_REQ_RE, what="Python requirement"),
            env=dm.str_map("env", key_pattern=_ENV_KEY_RE),
            category=dm.text("category", default="software_engineering", nonempty=True),
        )
        dm.done()
    m.done()
    return DatasetConfig(path=project, name=name, version=version, source_date_epoch=sde,
                         platforms=platforms, registry=registry, templates=templates,
                         defaults=defaults, engine=engine, bases=bases,
                         snapshot_base=snapshot_base)


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
