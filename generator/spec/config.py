"""gen.yaml read into a DatasetConfig: the dataset's name, version, epoch, platforms, engine,
defaults for every task, and the bases gen builds (suite, variant, include list, mirror,
snapshot base); and the field patterns gen.yaml and task specs share."""

from __future__ import annotations

import re
from pathlib import Path

from generator.spec.fields import _Map, _rel_path_check
from generator.spec.model import (
    BASE_VARIANTS,
    BUILD_ENGINES,
    DATASET_FILE,
    DEBIAN_MIRROR,
    DEFAULT_MAX_MUTANTS,
    SECURITY_MIRROR,
    SNAPSHOT_BASE,
    TASK_ID_RE,
    Author,
    BaseDecl,
    DatasetConfig,
    Defaults,
    Resources,
    StrengthConfig,
    Timeouts,
)
from generator.spec.yamlload import _read_yaml

__all__ = [
    "load_dataset_config",
]


_NAME_RE = TASK_ID_RE


_PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?\Z")


_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


_APT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?\Z")


_REQ_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?(\s*(==|>=|<=|~=|!=|<|>)\s*[^\s@]+)?\Z")


_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")


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


_COVERAGE_REQ_RE = re.compile(r"^coverage(\s*(==|>=|~=|<=|<|>|!=)\s*[0-9][0-9a-z.]*)?"
                              r"(\s*,\s*(==|>=|~=|<=|<|>|!=)\s*[0-9][0-9a-z.]*)*\Z")


def _strength(m: _Map | None) -> StrengthConfig | None:
    if m is None:
        return None
    out: dict[str, float | None] = {}
    for key in ("min_fix_coverage", "min_mutation_score"):
        if not m.has(key):
            out[key] = None
            continue
        value = m.number(key, default=0.0)
        if value > 1:
            raise m.ctx.fail((*m.fpath, key), f"{key} is {value:g}, a fraction above 1",
                             f"write it as a fraction between 0 and 1, e.g. {key}: 0.8")
        out[key] = value
    cfg = StrengthConfig(
        min_fix_coverage=out["min_fix_coverage"], min_mutation_score=out["min_mutation_score"],
        max_mutants=max(1, int(m.number("max_mutants", default=DEFAULT_MAX_MUTANTS,
                                         integer=True))),
        coverage=m.text("coverage", default=StrengthConfig().coverage, pattern=_COVERAGE_REQ_RE,
                        fix="write a coverage.py requirement, e.g. 'coverage>=7.4'"))
    m.done()
    return cfg


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
    strength = _strength(m.sub("strength", "strength"))
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
                         snapshot_base=snapshot_base, strength=strength)
