#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions called indirectly ("install_$name") look unreachable
# Virtualenvs with the three downstream consumers of gen's output, so tests can load the
# rendered tasks with the consumers' OWN code (tests/consumers/*_load.py).
#
#   scripts/consumers.sh setup [tb|harbor|swebench|all]   create/refresh the venv(s); idempotent
#   scripts/consumers.sh python tb|harbor|swebench         print the venv's python (no setup)
#   scripts/consumers.sh freeze tb|harbor|swebench         print `pip freeze` (to refresh the pins below)
#
# Venvs live in ${GEN_STATE:-<repo>/.gen}/venvs/{tb,harbor,swebench}:
#   tb        Python 3.12 + terminal-bench==0.2.18   (tb needs Python >= 3.12)
#   harbor    Python 3.12 + harbor==0.25.0           (installed --no-deps, see install_harbor)
#   swebench  Python 3.11 + swebench==5.0.2
# Python 3.12 is pyenv's 3.12.1 interpreter, called by path: the global pyenv version is not
# touched. Override the interpreters with GEN_PY312 / GEN_PY311.
#
# Every venv is installed against a full pin set (the pins_* functions at the bottom, used as
# a pip constraints file). A venv is reused only while its stamp (interpreter version + pins +
# this recipe) matches and its imports work; otherwise it is rebuilt from scratch.
#
# Host pip configuration: only the settings that say WHERE packages come from (index URLs,
# find-links, trusted hosts, certificates, proxy, timeouts/retries) are carried over from the
# host's pip config files and PIP_* variables. Everything else (a global constraints file,
# user/target/prefix installs, no-deps, require-hashes, ...) is dropped: pip runs with
# PIP_CONFIG_FILE=/dev/null and only the whitelisted PIP_* variables.
set -euo pipefail

RECIPE_VERSION=1
ALL_VENVS=(tb harbor swebench)

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$(realpath -m "${GEN_STATE:-$REPO/.gen}")"
VENVS="$STATE/venvs"

log() { printf '[consumers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

usage() {
    sed -n '3,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# ----------------------------------------------------------------------------------------
# Interpreters
# ----------------------------------------------------------------------------------------

# Usable for a venv: the right minor version, and ensurepip present (Debian's python3.11
# lacks it unless python3.11-venv is installed).
_usable_python() {  # PY MAJOR.MINOR
    [ -n "$1" ] && [ -x "$1" ] || return 1
    "$1" - "$2" <<'PY' >/dev/null 2>&1
import sys, ensurepip, venv  # noqa: F401
want = tuple(int(x) for x in sys.argv[1].split("."))
ensurepip.version()  # finds the bundled pip wheel (Debian: python3.X-venv)
sys.exit(0 if sys.version_info[:2] == want else 1)
PY
}

_real_python() {  # resolve pyenv shims etc. to the real interpreter binary
    "$1" -c 'import sys; print(sys.executable)'
}

_pyenv_root() {
    if command -v pyenv >/dev/null 2>&1; then
        pyenv root
    else
        echo "${PYENV_ROOT:-$HOME/.pyenv}"
    fi
}

python_for() {  # NAME -> path of the base interpreter
    local cand root
    case "$1" in
        tb|harbor)
            if [ -n "${GEN_PY312:-}" ]; then
                _usable_python "$GEN_PY312" 3.12 || die "GEN_PY312=$GEN_PY312 is not a usable Python 3.12"
                _real_python "$GEN_PY312"; return
            fi
            root="$(_pyenv_root)"
            for cand in "$root/versions/3.12.1/bin/python3.12" /usr/bin/python3.12 \
                        "$(command -v python3.12 2>/dev/null || true)"; do
                if _usable_python "$cand" 3.12; then _real_python "$cand"; return; fi
            done
            die "no Python 3.12 found (looked for $root/versions/3.12.1/bin/python3.12); set GEN_PY312" ;;
        swebench)
            if [ -n "${GEN_PY311:-}" ]; then
                _usable_python "$GEN_PY311" 3.11 || die "GEN_PY311=$GEN_PY311 is not a usable Python 3.11"
                _real_python "$GEN_PY311"; return
            fi
            root="$(_pyenv_root)"
            for cand in /usr/bin/python3.11 "$(command -v python3.11 2>/dev/null || true)" \
                        "$root"/versions/3.11.*/bin/python3.11; do
                if _usable_python "$cand" 3.11; then _real_python "$cand"; return; fi
            done
            die "no Python 3.11 with venv/ensurepip found (apt-get install python3.11-venv, or set GEN_PY311)" ;;
        *) die "unknown venv '$1' (expected: ${ALL_VENVS[*]})" ;;
    esac
}

# ----------------------------------------------------------------------------------------
# A clean pip environment
# ----------------------------------------------------------------------------------------

# Prints `export PIP_X=...` lines: the package-source settings from the host's pip config
# (files and environment), nothing else. Evaluated in a subshell that then runs pip.
_pip_source_env() {  # PY (any interpreter with pip)
    "$1" - <<'PY'
import ast, os, shlex, subprocess, sys

KEEP = {"index-url", "extra-index-url", "find-links", "trusted-host", "cert", "client-cert",
        "proxy", "timeout", "default-timeout", "retries"}
values = {}
# Config files first (global < user < site, as pip orders them); the environment wins.
env = dict(os.environ)
try:
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], env=env,
                         capture_output=True, text=True, check=False).stdout
except OSError:
    out = ""
for line in out.splitlines():
    key, sep, raw = line.partition("=")
    if not sep or "." not in key:
        continue
    section, _, name = key.rpartition(".")
    if section not in {"global", "install", "download"} or name not in KEEP:
        continue
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    name = "timeout" if name == "default-timeout" else name
    values[name] = " ".join(str(value).split())
for k, v in os.environ.items():
    if k.startswith("PIP_"):
        name = k[4:].lower().replace("_", "-")
        name = "timeout" if name == "default-timeout" else name
        if name in KEEP:
            values[name] = " ".join(v.split())
for name, value in sorted(values.items()):
    print(f"export PIP_{name.upper().replace('-', '_')}={shlex.quote(value)}")
PY
}

# Runs pip of VENV with only whitelisted settings. Output goes to the venv's log.
vpip() {  # VENV ARGS...
    local venv="$1"; shift
    (
        set -euo pipefail
        local src
        src="$(_pip_source_env "$venv/bin/python")"
        # Drop every PIP_* variable and the host's config files, then re-add the sources.
        while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^PIP_' || true)
        unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP VIRTUAL_ENV
        eval "$src"
        export PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
               PIP_PROGRESS_BAR=off PYTHONNOUSERSITE=1
        "$venv/bin/python" -m pip "$@"
    ) >>"$venv.log" 2>&1
}

# ----------------------------------------------------------------------------------------
# Per-venv recipes
# ----------------------------------------------------------------------------------------

pins_for() {  # NAME -> pin lines
    case "$1" in
        tb) pins_tb ;;
        harbor) pins_harbor ;;
        swebench) pins_swebench ;;
    esac
}

smoke_for() {  # NAME -> python snippet proving the loaders import, printing versions
    case "$1" in
        tb) cat <<'PY'
import importlib.metadata as md
import terminal_bench.dataset.dataset, terminal_bench.handlers.trial_handler  # noqa: F401
import terminal_bench.parsers.parser_factory  # noqa: F401
print("terminal-bench", md.version("terminal-bench"))
PY
        ;;
        harbor) cat <<'PY'
import importlib.metadata as md
import harbor.models.task.task, harbor.models.job.config  # noqa: F401
import harbor.environments.definition  # noqa: F401
print("harbor", md.version("harbor"))
PY
        ;;
        swebench) cat <<'PY'
import importlib.metadata as md
import swebench.harness.utils, swebench.harness.log_parsers  # noqa: F401
print("swebench", md.version("swebench"))
PY
        ;;
    esac
}

install_tb() {  # VENV PINS
    vpip "$1" install -c "$2" "terminal-bench==0.2.18"
}

# harbor 0.25.0 pins certifi>=2026.10.19, which some indexes do not carry: a plain
# `pip install harbor==0.25.0` then fails to resolve. Workaround: install harbor with
# --no-deps, then its core Requires-Dist (read from the installed METADATA, extras skipped)
# with certifi's lower bound dropped. certifi is also left out of the pins for that reason.
install_harbor() {  # VENV PINS
    local venv="$1" pins="$2" reqs="$1.harbor-requires.txt"
    vpip "$venv" install --no-deps -c "$pins" "harbor==0.25.0" || return 1
    "$venv/bin/python" - >"$reqs" <<'PY' || return 1
import importlib.metadata as md
from pip._vendor.packaging.requirements import Requirement

for line in md.requires("harbor") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # an extra, or not for this platform
    print("certifi" if req.name.lower() == "certifi" else str(req))
PY
    vpip "$venv" install -c "$pins" -r "$reqs"
}

install_swebench() {  # VENV PINS
    vpip "$1" install -c "$2" "swebench==5.0.2"
}

# ----------------------------------------------------------------------------------------
# setup
# ----------------------------------------------------------------------------------------

stamp_for() {  # NAME PY -> stamp text
    local name="$1" py="$2"
    {
        echo "recipe=$RECIPE_VERSION name=$name"
        "$py" -c 'import sys; print("python", sys.version.split()[0], sys.executable)'
        pins_for "$name"
        declare -f "install_$name"
    } | sha256sum | cut -d' ' -f1
}

setup_one() {  # NAME
    local name="$1" t0 py venv pins stamp versions
    t0="$(now)"
    py="$(python_for "$name")"
    venv="$VENVS/$name"
    stamp="$(stamp_for "$name" "$py")"
    if [ -f "$venv/.gen-consumers-stamp" ] && [ "$(cat "$venv/.gen-consumers-stamp")" = "$stamp" ] \
        && versions="$(smoke_for "$name" | LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" - 2>/dev/null)"; then
        touch "$venv/.gen-consumers-stamp"  # checked against this script's mtime by the tests
        log "$name: up to date ($versions, $("$venv/bin/python" -V 2>&1)) in $(elapsed "$t0")"
        return 0
    fi

    log "$name: building $venv from $py"
    rm -rf "$venv" "$venv.log"
    : >"$venv.log"
    pins="$venv.pins.txt"
    pins_for "$name" >"$pins"

    local t1; t1="$(now)"
    env -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV "$py" -m venv "$venv" >>"$venv.log" 2>&1 \
        || { tail -n 30 "$venv.log" >&2; die "$name: creating the venv failed (log: $venv.log)"; }
    log "$name: venv created in $(elapsed "$t1")"

    t1="$(now)"
    if ! "install_$name" "$venv" "$pins"; then
        grep -v 'is ignored: it is neither a file nor a directory' "$venv.log" | tail -n 40 >&2 || true
        die "$name: pip install failed after $(elapsed "$t1") (log: $venv.log)"
    fi
    log "$name: packages installed in $(elapsed "$t1")"

    # pip check: report, and fail on anything but harbor's known certifi pin.
    local check
    check="$("$venv/bin/python" -m pip check 2>&1 || true)"
    if [ "$check" != "No broken requirements found." ]; then
        if [ "$name" = harbor ] && ! grep -v -q 'requires certifi' <<<"$check"; then
            log "$name: pip check (expected, see install_harbor): $check"
        else
            printf '%s\n' "$check" >&2
            die "$name: pip check failed"
        fi
    fi

    if ! versions="$(smoke_for "$name" | LITELLM_LOCAL_MODEL_COST_MAP=True "$venv/bin/python" - 2>>"$venv.log")"; then
        tail -n 30 "$venv.log" >&2
        die "$name: import check failed (log: $venv.log)"
    fi
    echo "$stamp" >"$venv/.gen-consumers-stamp"
    log "$name: ready ($versions, $("$venv/bin/python" -V 2>&1)) in $(elapsed "$t0")"
}

cmd_setup() {
    local which="${1:-all}" names=() t0
    case "$which" in
        all) names=("${ALL_VENVS[@]}") ;;
        tb|harbor|swebench) names=("$which") ;;
        *) usage ;;
    esac
    command -v flock >/dev/null 2>&1 || die "flock (util-linux) is required"
    mkdir -p "$VENVS"
    t0="$(now)"
    # One setup at a time per state dir (parallel test runs may all ask for a venv).
    exec 9>"$VENVS/.lock"
    flock 9
    for n in "${names[@]}"; do
        setup_one "$n"
    done
    log "setup $which: done in $(elapsed "$t0")"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    case "$cmd" in
        setup) [ $# -le 1 ] || usage; cmd_setup "$@" ;;
        python)
            [ $# -eq 1 ] || usage
            case "$1" in tb|harbor|swebench) echo "$VENVS/$1/bin/python" ;; *) usage ;; esac ;;
        freeze)
            [ $# -eq 1 ] || usage
            [ -x "$VENVS/$1/bin/python" ] || die "no venv $VENVS/$1: run setup $1 first"
            "$VENVS/$1/bin/python" -m pip freeze --exclude-editable | LC_ALL=C sort -f ;;
        *) usage ;;
    esac
}

# ----------------------------------------------------------------------------------------
# Pins: `pip freeze` of a venv built by this script, certifi left out (see install_harbor).
# Refresh with: scripts/consumers.sh freeze NAME | grep -vi '^certifi=='
# ----------------------------------------------------------------------------------------

pins_tb() { cat <<'PINS'
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
altair==6.3.0
annotated-doc==0.0.7
annotated-types==0.8.0
anthropic==2.13.0
anyio==4.16.0
asciinema==2.4.0
attrs==26.1.0
blessed==1.52.0
boto3==1.44.8
botocore==1.44.8
cffi==2.1.1
charset-normalizer==3.5.2
click==8.5.1
cryptography==50.0.2
deprecation==2.1.0
docker==7.2.0
docstring_parser==0.18.0
editor==2.0.1
fastuuid==0.14.0
filelock==4.2.12
frozenlist==1.8.0
fsspec==2026.9.0
h11==0.16.0
h2==4.4.1
hf-xet==1.8.0
hpack==4.2.0
httpcore2==2.16.2
httpcore==1.0.9
httpx2==2.16.2
httpx==0.28.1
huggingface_hub==2.4.0
hyperframe==6.1.0
idna==3.20
importlib_metadata==8.9.0
inquirer==3.4.1
itsdangerous==2.2.0
Jinja2==3.1.6
jinxed==2.1.0
jiter==0.19.0
jmespath==1.1.0
jsonschema-specifications==2025.9.1
jsonschema==4.26.0
litellm==1.110.2
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mcp-types==2.3.0
mcp==2.3.0
mdurl==0.1.2
multidict==7.2.1
narwhals==2.29.0
numpy==2.5.5
openai==3.57.0
opentelemetry-api==1.45.2
packaging==26.3
pandas==3.1.1
pillow==13.0.0
postgrest==2.34.1
propcache==0.5.4
protobuf==7.36.2
psycopg2-binary==2.9.13
pyarrow==26.0.1
pycparser==3.12
pydantic-settings==2.16.3
pydantic==2.14.4
pydantic_core==2.50.5
pydeck==0.9.3
Pygments==2.21.0
PyJWT==2.15.1
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
python-multipart==0.0.34
PyYAML==6.0.4
readchar==4.2.2
realtime==2.34.1
referencing==0.37.0
regex==2026.11.19
requests==2.34.2
rich==15.0.0
rpds-py==2026.9.1
ruamel.yaml==0.19.1
runs==1.3.0
s3transfer==0.19.3
shellingham==1.5.4
six==1.17.0
sniffio==1.3.1
SQLAlchemy==2.1.9
sse-starlette==3.7.0
starlette==1.10.0
storage3==2.34.1
streamlit==1.67.0
supabase-auth==2.34.1
supabase-functions==2.34.1
supabase==2.34.1
tabulate==0.10.0
tenacity==9.2.1
terminal-bench==0.2.18
tiktoken==0.14.0
tokenizers==0.23.3
tqdm==4.70.1
truststore==0.10.5
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
uvicorn==0.54.0
watchdog==7.1.0
wcwidth==0.9.4
websockets==15.0.1
xmod==1.10.0
yarl==1.25.1
zipp==4.1.2
PINS
}

pins_harbor() { cat <<'PINS'
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
boto3==1.44.8
botocore==1.44.8
cffi==2.1.1
charset-normalizer==3.5.2
click==8.5.1
cryptography==50.0.2
deprecation==2.1.0
dirhash==0.5.0
fastapi==0.165.0
fastuuid==0.14.0
filelock==4.2.12
frozenlist==1.8.0
fsspec==2026.9.0
h11==0.16.0
h2==4.4.1
harbor==0.25.0
hf-xet==1.8.0
hpack==4.2.0
httpcore2==2.16.2
httpcore==1.0.9
httpx2==2.16.2
httpx==0.28.1
huggingface_hub==2.4.0
hyperframe==6.1.0
idna==3.20
importlib_metadata==8.9.0
Jinja2==3.1.6
jiter==0.19.0
jmespath==1.1.0
jsonschema-specifications==2025.9.1
jsonschema==4.26.0
litellm==1.110.2
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
multidict==7.2.1
openai==3.57.0
opentelemetry-api==1.45.2
packaging==26.3
pathspec==1.1.1
platformdirs==4.14.8
postgrest==2.34.1
propcache==0.5.4
pycparser==3.12
pydantic-settings==2.16.3
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
PyJWT==2.15.1
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
PyYAML==6.0.4
realtime==2.34.1
referencing==0.37.0
regex==2026.11.19
requests==2.34.2
rich==15.0.0
rpds-py==2026.9.1
s3transfer==0.19.3
scantree==0.0.4
semver==3.1.2
shellingham==1.5.4
shortuuid==1.0.13
six==1.17.0
sniffio==1.3.1
starlette==1.10.0
storage3==2.34.1
supabase-auth==2.34.1
supabase-functions==2.34.1
supabase==2.34.1
tenacity==9.2.1
tiktoken==0.14.0
tokenizers==0.23.3
toml==0.10.2
tqdm==4.70.1
truststore==0.10.5
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
uvicorn==0.54.0
websockets==15.0.1
yarl==1.25.1
zipp==4.1.2
PINS
}

pins_swebench() { cat <<'PINS'
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
beautifulsoup4==4.15.0
cbor2==6.3.0
cfgv==3.5.0
chardet==7.7.0
charset-normalizer==3.5.2
click==8.5.1
datasets==5.2.0
dill==0.4.1
distlib==0.4.4
docker==7.2.0
fastcore==1.14.5
filelock==4.2.12
frozenlist==1.8.0
fsspec==2026.9.0
ghapi==1.1.1
gitdb==4.0.12
GitPython==3.2.1
grpclib==0.4.9
h11==0.16.0
h2==4.4.1
hf-xet==1.8.0
hpack==4.2.0
httpcore2==2.16.2
httpx2==2.16.2
huggingface_hub==2.4.0
hyperframe==6.1.0
identify==2.6.20
idna==3.20
markdown-it-py==4.3.0
mdurl==0.1.2
modal==1.6.4
multidict==7.2.1
multiprocess==0.70.19
nodeenv==1.12.0
numpy==2.4.6
packaging==26.3
pandas==3.1.1
platformdirs==4.14.8
pre_commit==4.7.0
propcache==0.5.4
protobuf==7.36.2
pyarrow==26.0.1
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
python-dateutil==4.0.0
python-discovery==1.9.6
python-dotenv==1.2.4
PyYAML==6.0.4
requests==2.34.2
rich==15.0.0
shellingham==1.5.4
smmap==5.0.3
soupsieve==2.10
swebench==5.0.2
synchronicity==0.12.7
tenacity==9.2.1
toml==0.10.2
tqdm==4.70.1
truststore==0.10.5
typer==0.29.2
types-certifi==2021.10.8.3
types-toml==0.10.8.20260518
typing-inspection==0.4.5
typing_extensions==4.16.0
tzdata==2026.6
unidiff==1.0.1
urllib3==2.8.0
virtualenv==21.15.11
watchfiles==1.3.0
xxhash==4.1.0
yarl==1.25.1
PINS
}

main "$@"; exit $?  # on one line: bash stops reading here, even if this file is edited meanwhile
