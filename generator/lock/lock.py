"""`gen lock`: resolve every moving input of the specs once, into `lockfiles/`.

- base images: tag -> index digest + per-platform manifest digest, through the registry API;
- Debian packages: the closure the pinned base lacks, exact versions + sha256 + URL, from
  Debian's signed indices (`generator.lock.aptlock`);
- Python requirements: a `--require-hashes` lock from `uv pip compile --generate-hashes`, run
  isolated from the host's pip/uv configuration so no host-only index leaks into the lock;
- SWE sources: the sha256 of the git bundle / archive, and the base commit checked against it.

Every per-task lock records the digest of what it was resolved from (`# input:`), so an edited
spec shows up as a stale lock. Without `update`, a lock whose input is unchanged keeps its
bytes; `check` does no network I/O at all and only reports what is missing or stale.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from generator.core import proc, state
from generator.core.cas import Store, default_store
from generator.core.errors import LockError, ToolError
from generator.core.fsutil import atomic_write
from generator.image import registry
from generator.lock.aptlock import AptResolver, base_files
from generator.lock.baselock import declared_input, resolve_base_lock
from generator.lock.lockfiles import (
    TASK_LOCK_FILES,
    AptLock,
    ImagePin,
    SourceLock,
    base_lock_path,
    format_apt_lock,
    format_base_lock,
    format_image_lock,
    format_python_lock,
    format_source_lock,
    parse_apt_lock,
    parse_python_lock,
    split_ref,
)
from generator.lock.lockset import (
    PYTHON_TARGETS,
    apt_input,
    python_input,
    python_target,
    read_lockset,
    source_input,
)
from generator.lock.tools import coverage_locks, left_over_tool_locks, read_coverage_lock
from generator.spec.model import Project, SweTask, Task
from generator.spec.project import load_project

__all__ = ["LockResult", "compile_python", "lock_project", "lock_source", "stale_locks"]

COMMAND = "gen lock"
PYPI_INDEX = os.environ.get("GEN_PYPI_INDEX", "https://pypi.org/simple")


@dataclass
class LockResult:
    written: list[str] = field(default_factory=list)  # files (re)written, relative
    kept: list[str] = field(default_factory=list)  # locks whose input was unchanged
    removed: list[str] = field(default_factory=list)  # locks of tasks that no longer exist
    stale: list[str] = field(default_factory=list)  # --check: what is missing or stale
    images: dict[str, dict[str, str]] = field(default_factory=dict)  # ref -> platform -> digest


def _arch(platform: str) -> str:
    return platform.split("/")[1]


# --------------------------------------------------------------------------------------
# What the lock should contain (pure, offline)
# --------------------------------------------------------------------------------------


def _refs(project: Project) -> list[str]:
    return sorted({t.environment.base_image for t in project.tasks})


def _left_over_base_locks(project: Project) -> list[str]:
    """lockfiles/bases/ files (relative to the project) of no base gen.yaml declares."""
    bases_dir = project.root / "lockfiles" / "bases"
    declared = {base_lock_path(bases_dir.parent, b.ref).name for b in project.config.bases}
    return [f"lockfiles/bases/{f.name}" for f in sorted(bases_dir.iterdir())
            if f.name not in declared] if bases_dir.is_dir() else []


def stale_locks(project: Project) -> list[str]:
    """Offline: every lock entry that is missing, stale or left over, one line each."""
    root = project.root
    locks = read_lockset(root)
    platforms = project.config.platforms
    problems: list[str] = []
    used = _refs(project)
    for ref in used:
        for plat in platforms:
            if locks.images.get(ref, plat) is None:
                problems.append(f"lockfiles/images.lock: '{ref}' ({plat}) is not pinned")
    for decl in project.config.bases:
        rel = _base_rel(project, decl.ref)
        got = locks.base(decl.ref)
        if got is None:
            problems.append(f"{rel}: missing")
            continue
        if got[0].input != declared_input(decl, platforms[0]):
            problems.append(f"{rel}: stale (gen.yaml's declaration of {decl.ref} changed)")
        for plat in platforms[:1]:
            pin = locks.images.get(decl.ref, plat)
            if pin is not None and pin.base_lock != got[1]:
                problems.append(f"lockfiles/images.lock: '{decl.ref}' ({plat}) pins a digest "
                                f"built from another base lock than {rel}")
    problems += [f"{rel}: left over (no such base in gen.yaml)"
                 for rel in _left_over_base_locks(project)]
    for pin in locks.images.pins:
        if pin.ref not in used or pin.platform not in platforms:
            problems.append(f"lockfiles/images.lock: '{pin.ref}' ({pin.platform}) is pinned but "
                            "no task uses it")
    primary = platforms[0]
    for task in project.tasks:
        base = f"lockfiles/tasks/{task.id}"
        tpin = locks.images.get(task.environment.base_image, primary)
        names = task.environment.apt
        apt = locks.apt(task.id)
        if names and apt is None:
            problems.append(f"{base}/apt.lock: missing")
        elif names and (tpin is None or (apt is not None
                                         and apt.input != apt_input(tpin.pinned(), names))):
            problems.append(f"{base}/apt.lock: stale (the spec or the base image changed)")
        elif not names and apt is not None:
            problems.append(f"{base}/apt.lock: left over (the task has no Debian packages)")
        reqs = task.environment.python
        py = locks.python(task.id)
        if reqs and py is None:
            problems.append(f"{base}/requirements.txt: missing")
        elif reqs and py is not None and py.input != python_input(
                reqs, primary, locks.python_target(task.id, task.environment.base_image,
                                                   primary)):
            problems.append(f"{base}/requirements.txt: stale (the spec changed)")
        elif not reqs and py is not None:
            problems.append(f"{base}/requirements.txt: left over (the task has no Python "
                            "requirements)")
        src = locks.source(task.id)
        if isinstance(task, SweTask):
            want = source_input(task.source.type, task.source.location, task.base_commit)
            if src is None:
                problems.append(f"{base}/source.lock: missing")
            elif src.input != want:
                problems.append(f"{base}/source.lock: stale (the spec changed)")
        elif src is not None:
            problems.append(f"{base}/source.lock: left over (not an SWE task)")
    ids = {t.id for t in project.tasks}
    tasks_dir = root / "lockfiles" / "tasks"
    if tasks_dir.is_dir():
        for d in sorted(tasks_dir.iterdir()):
            if d.name not in ids:
                problems.append(f"lockfiles/tasks/{d.name}/: left over (no such task)")
    wanted = coverage_locks(project, locks)
    for tool in wanted:
        have = read_coverage_lock(root, tool.rel)
        if have is None:
            problems.append(f"{tool.rel}: missing (gen.yaml's strength: needs coverage.py)")
        elif have.input != tool.input:
            problems.append(f"{tool.rel}: stale (gen.yaml's strength.coverage changed)")
    problems += [f"{rel}: left over (no task's interpreter needs it)"
                 for rel in left_over_tool_locks(root, wanted)]
    return problems


# --------------------------------------------------------------------------------------
# Python: uv pip compile, isolated
# --------------------------------------------------------------------------------------


def _uv() -> str:
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        return proc.which("uv", fix="pip install uv (gen's lock backend for Python)")


def _isolated_env(cache: Path) -> dict[str, str]:
    """The host env minus every pip/uv setting (host-only indexes must not leak in)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "PYTHON")) and k not in ("VIRTUAL_ENV",)}
    env["UV_CACHE_DIR"] = str(cache)
    env["UV_NO_CONFIG"] = "1"
    return env


# The newest glibc uv's --python-platform names (uv 0.13: manylinux_2_17 .. manylinux_2_40).
# An image with a newer glibc (trixie: 2.41) is resolved as 2_40: every wheel uv then picks
# runs there (manylinux is backwards compatible), and gen fetch still chooses among the
# locked files with the image's own tags (fetch.wheel_tags).
UV_MANYLINUX_MAX = 40


def uv_platform(plat: str) -> str:
    """`<machine>-manylinux_2_N` clamped to what uv's --python-platform accepts."""
    m = re.fullmatch(r"(\w+)-manylinux_2_(\d+)", plat)
    if m is None:
        return plat
    # below the oldest, uv refuses the value and says so: no wheel it picks would run there
    return f"{m.group(1)}-manylinux_2_{min(int(m.group(2)), UV_MANYLINUX_MAX)}"


def compile_python(requirements: Sequence[str], platform: str, *, input_: str, cache: Path,
                   file: str, target: tuple[str, str] | None = None) -> str:
    """The `--require-hashes` requirements.txt text for `requirements` on `platform`, for the
    interpreter and glibc of `target` (the image's python3 and libc6)."""
    version, plat = target or PYTHON_TARGETS.get(platform, ("3.11", ""))
    if plat == platform:
        plat = ""
    if not plat:
        raise LockError(f"no Python target known for platform '{platform}'", file="gen.yaml",
                        field="platforms", hint="use linux/amd64 or linux/arm64")
    with tempfile.TemporaryDirectory(prefix="gen-uv-") as tmp:
        req_in = Path(tmp) / "requirements.in"
        req_in.write_text("".join(r + "\n" for r in requirements))
        cmd = [_uv(), "pip", "compile", "--quiet", "--no-config", "--native-tls",
               "--generate-hashes", "--no-header", "--no-annotate", "--no-strip-extras",
               "--index-url", PYPI_INDEX, "--python-version", version,
               "--python-platform", uv_platform(plat), "--output-file", str(Path(tmp) / "out.txt"),
               str(req_in)]
        result = proc.run(cmd, what=f"resolve Python requirements ({file})",
                          env=_isolated_env(cache), check=False, timeout=900)
        if result.returncode != 0:
            raise ToolError(f"{file}: uv pip compile failed: "
                            f"{proc.failure_detail('uv', result.stderr, lines=3)}",
                            hint="check the requirement names/versions in environment.python "
                            "and that PyPI is reachable")
        compiled = (Path(tmp) / "out.txt").read_text()
    lock = parse_python_lock("# input: x\n" + compiled, file)
    return format_python_lock(input_, requirements, lock.pins, command=COMMAND)


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


def _is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https")


def _download(url: str, store: Store, *, what: str, timeout: float = 120) -> str:
    """Stream `url` into the store; returns its sha256 hex."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return store.put_stream(resp)
    except OSError as exc:
        raise ToolError(f"{what}: download of {url} failed: {exc}",
                        hint="check the URL and the network") from exc


def _git(*args: str, what: str, cwd: Path | None = None) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C"}
    return str(proc.run(["git", *args], what=what, extra_env=env, cwd=cwd).stdout)


def _archive_commit(archive: Path, epoch: int, tmp: Path) -> str:
    """The commit the SWE Dockerfile makes of an archive (same git recipe, same dates)."""
    work = tmp / "tree"
    work.mkdir()
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            m.name = parts[1]
            members.append(m)
        tar.extractall(work, members=members, filter="data")
    date = f"@{epoch} +0000"
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    _git("init", "--quiet", what="git init", cwd=work)
    _git("add", "-A", what="git add", cwd=work)
    proc.run(["git", "-c", "user.name=gen", "-c", "user.email=gen@localhost", "commit",
              "--quiet", "-m", "base"], what="git commit", cwd=work,
             extra_env={**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"})
    return _git("rev-parse", "HEAD", what="git rev-parse", cwd=work).strip()


def lock_source(task: SweTask, project: Project, store: Store) -> SourceLock:
    """sha256 of the task's bundle/archive (stored in the CAS); the base commit verified."""
    src = task.source
    spec_file = f"tasks/{task.id}/task.spec.yaml"
    field_name = f"source.{src.type}"
    if _is_url(src.location):
        if src.type == "git":
            raise LockError(f"task '{task.id}': git URL sources cannot be pinned by content "
                            f"hash ('{src.location}')", file=spec_file, field=field_name,
                            hint="make a bundle (git bundle create repo.bundle --all) and point "
                            "source.git at it, or use a release archive")
        hexd = _download(src.location, store, what=f"task '{task.id}' source")
        path = store.path(hexd)
        name = urllib.parse.urlsplit(src.location).path.rsplit("/", 1)[-1]
    else:
        path = (project.root / src.location).resolve()
        if not path.is_file():
            hint = ("make one with `git bundle create <file> --all`" if src.type == "git"
                    else "point it at a .tar.gz/.tar.xz/.tar archive")
            raise LockError(f"task '{task.id}': source '{src.location}' is not a file",
                            file=spec_file, field=field_name, hint=hint)
        hexd = store.put_file(path)
        name = path.name
    if src.type == "git":
        filename = "source.bundle"
        with tempfile.TemporaryDirectory(prefix="gen-src-") as tmp:
            clone = Path(tmp) / "repo.git"
            _git("clone", "--quiet", "--bare", str(store.path(hexd)), str(clone),
                 what=f"read the bundle of task '{task.id}'")
            ok = proc.run(["git", "-C", str(clone), "cat-file", "-e",
                           f"{task.base_commit}^{{commit}}"], what="look up the base commit",
                          check=False)
            if ok.returncode != 0:
                raise LockError(f"task '{task.id}': base_commit {task.base_commit} is not in "
                                f"the bundle {src.location}", file=spec_file,
                                field="base_commit", hint="fix base_commit or re-create the "
                                "bundle with `git bundle create <file> --all`")
        commit = task.base_commit
    else:
        suffix = next((s for s in (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar")
                       if name.endswith(s)), None)
        if suffix is None:
            raise LockError(f"task '{task.id}': archive '{name}' is not a tar archive",
                            file=spec_file, field=field_name, hint="use a .tar/.tar.gz/.tar.xz")
        filename = "source" + suffix
        with tempfile.TemporaryDirectory(prefix="gen-src-") as tmp:
            got = _archive_commit(store.path(hexd), project.config.source_date_epoch, Path(tmp))
        if got != task.base_commit:
            raise LockError(f"task '{task.id}': the archive makes commit {got}, not base_commit "
                            f"{task.base_commit}", file=spec_file, field="base_commit",
                            hint=f"set base_commit: {got}")
        commit = ""
    return SourceLock(input=source_input(src.type, src.location, task.base_commit),
                      type=src.type, location=src.location, sha256=hexd, commit=commit,
                      filename=filename)


# --------------------------------------------------------------------------------------
# The whole project
# --------------------------------------------------------------------------------------


def _write(root: Path, rel: str, text: str, result: LockResult) -> None:
    path = root / rel
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            result.kept.append(rel)
            return
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    result.written.append(rel)


def _base_rel(project: Project, ref: str) -> str:
    return f"lockfiles/bases/{base_lock_path(project.root / 'lockfiles', ref).name}"


def _lock_bases(project: Project, update: bool, result: LockResult,
                say: Callable[[str], None]) -> None:
    """Write the base lock of each declared base that is missing or stale (all: `update`).
    A re-resolved closure with the same packages keeps the lock's bytes (and its pin)."""
    locks = read_lockset(project.root)
    platform = project.config.platforms[0]
    for decl in project.config.bases:
        rel = _base_rel(project, decl.ref)
        have = locks.base(decl.ref)
        want = declared_input(decl, platform)
        if have is not None and have[0].input == want and not update:
            result.kept.append(rel)
            continue
        say(f"lock base {decl.ref}")
        lock = resolve_base_lock(decl, platform, project.root / state.APT, file=rel)
        if have is not None and have[0].input == want and \
                set(have[0].packages) == set(lock.packages):
            result.kept.append(rel)
            continue
        _write(project.root, rel, format_base_lock(lock, command=COMMAND), result)


def _pin_images(project: Project, update: bool, result: LockResult) -> list[ImagePin]:
    locks = read_lockset(project.root)
    pins: list[ImagePin] = []
    for ref in _refs(project):
        have = [locks.images.get(ref, p) for p in project.config.platforms]
        if project.config.base(ref) is not None:
            pins.extend(_pin_declared(project, ref, have))
            continue
        if not update and all(have):
            pins.extend(p for p in have if p is not None)
            continue
        users = sorted(t.id for t in project.tasks if t.environment.base_image == ref)
        try:
            resolved = registry.resolve(ref)
        except ToolError as exc:
            raise ToolError(f"base image '{ref}' (used by {', '.join(users)}): {exc.message}",
                            hint=exc.hint) from exc
        _repo, _tag, digest = split_ref(ref)
        if digest is not None and resolved.digest != digest:
            raise ToolError(f"'{ref}' resolved to {resolved.digest}, not the digest it names",
                            hint="the registry serves other content; check the reference")
        for plat in project.config.platforms:
            manifest = resolved.platforms.get(plat)
            if manifest is None:
                raise LockError(f"base image '{ref}' has no {plat} manifest (it has: "
                                f"{', '.join(sorted(resolved.platforms)) or 'none'})",
                                file="gen.yaml", field="platforms",
                                hint="build/push the image for that platform or drop it")
            pins.append(ImagePin(ref, plat, resolved.digest, manifest))
    for pin in pins:
        result.images.setdefault(pin.ref, {})[pin.platform] = pin.manifest_digest
    return pins


def _pin_declared(project: Project, ref: str, have: list[ImagePin | None]) -> list[ImagePin]:
    """The pin of a base gen builds: the digest its base lock yields (built when the pin is
    missing or was made from another lock)."""
    got = read_lockset(project.root).base(ref)
    if got is None:
        raise LockError(f"the declared base {ref} has no base lock", file=_base_rel(project, ref),
                        hint="run `gen lock`")
    lock_hex = got[1]
    if all(p is not None and p.base_lock == lock_hex for p in have):
        return [p for p in have if p is not None]
    from generator.image.base import build_base  # base builds; lock must not import it at load

    built = build_base(project.root, ref=ref)
    return [ImagePin(ref, plat, built.index_digest, built.manifest_digest, lock_hex)
            for plat in project.config.platforms[:1]]


def _lock_tools(project: Project, update: bool, outputs: dict[str, str | None],
                gen_dir: Path) -> None:
    """coverage.py per interpreter of the tasks' images (lockfiles/tools/, see lock/tools.py),
    from the apt locks as this run leaves them; left-over tool locks are removed."""
    fresh = {rel.split("/")[2]: None if text is None else parse_apt_lock(text, rel)
             for rel, text in outputs.items() if rel.endswith("/apt.lock")}
    locks = read_lockset(project.root)
    wanted = coverage_locks(project, locks, fresh)
    primary = project.config.platforms[0]
    for tool in wanted:
        have = read_coverage_lock(project.root, tool.rel)
        if update or have is None or have.input != tool.input:
            outputs[tool.rel] = compile_python([tool.requirement], primary, input_=tool.input,
                                               cache=gen_dir / "uv-cache", file=tool.rel,
                                               target=tool.target)
    for rel in left_over_tool_locks(project.root, wanted):
        outputs[rel] = None


def lock_project(project_dir: Path, *, update: bool = False, check: bool = False,
                 only: Sequence[str] | None = None, store: Store | None = None,
                 progress: Callable[[str], None] | None = None) -> LockResult:
    """Resolve what is missing or stale (everything with `update`) and write `lockfiles/`."""
    project = load_project(project_dir)
    result = LockResult()
    if check:
        result.stale = stale_locks(project)
        return result
    say = progress or (lambda _msg: None)
    root = project.root
    store = store or default_store(root)
    gen_dir = root / state.STATE
    snapshot = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # of task apt locks made now
    _lock_bases(project, update, result, say)
    pins = _pin_images(project, update, result)
    by_ref = {(p.ref, p.platform): p for p in pins}
    primary = project.config.platforms[0]
    locks = read_lockset(root)
    resolvers: dict[str, AptResolver] = {}
    tasks: list[Task] = [t for t in project.tasks if not only or t.id in only]
    lock_root = root / "lockfiles"
    outputs: dict[str, str | None] = {}  # rel path -> text (None: delete)
    for task in tasks:
        say(f"lock {task.id}")
        rel = f"lockfiles/tasks/{task.id}"
        pin = by_ref[(task.environment.base_image, primary)]
        # Debian packages
        names = list(task.environment.apt)
        if names:
            want = apt_input(pin.pinned(), names)
            have_apt = locks.apt(task.id)
            if update or have_apt is None or have_apt.input != want:
                resolver = resolvers.get(pin.pinned())
                if resolver is None:
                    base = base_files(pin.pinned(), pin.manifest_digest, _arch(primary),
                                      gen_dir / "apt" / "base")
                    resolver = AptResolver(base, gen_dir / "apt" / "roots")
                    resolvers[pin.pinned()] = resolver
                pkgs = resolver.resolve(names, file=f"{rel}/apt.lock")
                outputs[f"{rel}/apt.lock"] = format_apt_lock(
                    AptLock(input=want, requested=tuple(names), packages=tuple(pkgs),
                            base=pin.pinned(), snapshot=snapshot), command=COMMAND)
        else:
            outputs[f"{rel}/apt.lock"] = None
        # Python requirements
        reqs = list(task.environment.python)
        if reqs:
            # the interpreter and glibc of this task's image: its base's and its own packages
            # (the apt lock just resolved, if it was)
            new_apt = outputs.get(f"{rel}/apt.lock")
            if new_apt:
                got = locks.base(task.environment.base_image)
                target = python_target(primary, (
                    *(got[0].packages if got else ()),
                    *parse_apt_lock(new_apt, f"{rel}/apt.lock").packages))
            else:
                target = locks.python_target(task.id, task.environment.base_image, primary)
            want = python_input(reqs, primary, target)
            have_py = locks.python(task.id)
            if update or have_py is None or have_py.input != want:
                outputs[f"{rel}/requirements.txt"] = compile_python(
                    reqs, primary, input_=want, cache=gen_dir / "uv-cache",
                    file=f"{rel}/requirements.txt", target=target)
        else:
            outputs[f"{rel}/requirements.txt"] = None
        # Sources
        if isinstance(task, SweTask):
            want = source_input(task.source.type, task.source.location, task.base_commit)
            have_src = locks.source(task.id)
            if update or have_src is None or have_src.input != want:
                outputs[f"{rel}/source.lock"] = format_source_lock(
                    lock_source(task, project, store), command=COMMAND)
        else:
            outputs[f"{rel}/source.lock"] = None
    _lock_tools(project, update, outputs, gen_dir)
    # Everything resolved: now write (each file atomically; unchanged bytes are kept).
    _write(root, "lockfiles/images.lock", format_image_lock(pins, command=COMMAND), result)
    for rel, text in sorted(outputs.items()):
        if text is None:
            if (root / rel).exists():
                (root / rel).unlink()
                result.removed.append(rel)
        else:
            _write(root, rel, text, result)
    if not only:
        ids = {t.id for t in project.tasks}
        tasks_dir = lock_root / "tasks"
        if tasks_dir.is_dir():
            for d in sorted(tasks_dir.iterdir()):
                if d.name not in ids:
                    shutil.rmtree(d)
                    result.removed.append(f"lockfiles/tasks/{d.name}/")
        for d in sorted(tasks_dir.iterdir()) if tasks_dir.is_dir() else []:
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        for rel in _left_over_base_locks(project):  # its bases: entry is gone
            (root / rel).unlink()
            result.removed.append(rel)
        bases_dir = lock_root / "bases"
        if bases_dir.is_dir() and not any(bases_dir.iterdir()):
            bases_dir.rmdir()
    unchanged = {f"lockfiles/tasks/{t.id}/{n}" for t in tasks
                 for n in TASK_LOCK_FILES
                 if (root / f"lockfiles/tasks/{t.id}/{n}").exists()} - set(result.written)
    result.kept = sorted(set(result.kept) | unchanged)
    return result
