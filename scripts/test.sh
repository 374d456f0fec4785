#!/usr/bin/env bash
# The test suite, exactly as CI runs it (.ci/run): installs what it needs on a fresh machine,
# runs the static checks, brings up the local infrastructure, runs every test, then checks the
# committed lockfiles/ and dataset/.
#   bash scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
log() { printf '[test] %s\n' "$*" >&2; }

PY="$(bash scripts/bootstrap.sh)"
GEN="$(dirname "$PY")/gen"

log "static checks: ruff and mypy, as configured in pyproject.toml"
"$PY" -m ruff check generator tests bench
"$PY" -m mypy

log "bringing up the local infrastructure (Debian tools, registry, Docker engine)"
trap '"$GEN" infra down --project "$REPO" >&2 || true' EXIT
"$GEN" infra up --project "$REPO" >&2
eval "$("$GEN" infra env --project "$REPO")"

log "checking that the committed lockfiles/ and dataset/ match the specs (offline, before any re-pin)"
"$GEN" lock --check --project "$REPO"
"$GEN" render --check --project "$REPO"

log "preparing the example project: its base image in the registry, its locked artifacts"
bash scripts/prepare.sh "$GEN" "$REPO"

log "running the tests"
"$PY" -m pytest -p no:cacheprovider "$@"

log "checking that lockfiles/ and dataset/ still match the specs (after any re-pin above)"
"$GEN" lock --check --project "$REPO"
"$GEN" render --check --project "$REPO"
