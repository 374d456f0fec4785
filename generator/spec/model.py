"""The typed model of a dataset: gen.yaml's DatasetConfig (defaults, declared bases, platforms,
engine) and the tasks (TerminalTask, SweTask and their parts), frozen dataclasses; and the fixed
vocabularies the specs are checked against."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "BASE_VARIANTS",
    "BUILD_ENGINES",
    "DATASET_FILE",
    "DEBIAN_MIRROR",
    "DIFFICULTIES",
    "EVAL_TYPES",
    "LOG_PARSERS",
    "RESERVED_DIRS",
    "SECURITY_MIRROR",
    "SNAPSHOT_BASE",
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
]


DATASET_FILE = "gen.yaml"


SPEC_FILE = "task.spec.yaml"


SHA1_RE = re.compile(r"^[0-9a-f]{40}\Z")  # a git commit
TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*\Z")


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


# coverage.py, which `gen validate --strength` copies into task containers: gen lock pins it per
# interpreter (lockfiles/tools/), so the newest release that supports each image's python3
COVERAGE_REQUIREMENT = "coverage>=7.4"
DEFAULT_MAX_MUTANTS = 30  # per task: --max-mutants, else gen.yaml strength.max_mutants, else this


def mutant_budget(given: int | None, cfg: StrengthConfig | None) -> int:
    """The mutants per task `gen validate --strength` runs at most."""
    if given is not None:
        return given
    return cfg.max_mutants if cfg is not None else DEFAULT_MAX_MUTANTS


@dataclass(frozen=True)
class StrengthConfig:
    """gen.yaml `strength:`: the test-strength gate (`gen validate --strength`, `gen release`).
    A threshold left out is not enforced; with the section present, gen lock pins coverage.py."""

    min_fix_coverage: float | None = None  # covered / executable lines the fix changed
    min_mutation_score: float | None = None  # killed / (killed + survived)
    max_mutants: int = DEFAULT_MAX_MUTANTS  # per task, when --max-mutants is not given
    coverage: str = COVERAGE_REQUIREMENT


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
    strength: StrengthConfig | None = None  # gen.yaml `strength:` (None: no gate, no coverage lock)

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
