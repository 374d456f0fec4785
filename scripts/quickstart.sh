#!/usr/bin/env bash
# Set up gen on this machine and run the pipeline on the example dataset (this repository).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> %s\n' "$*" >&2; }

step "installing gen into .venv"
PY="$(bash scripts/bootstrap.sh)"
GEN="$(dirname "$PY")/gen"

if [ -f scripts/infra.sh ]; then
    step "local infrastructure: Debian tools, registry on 127.0.0.1, base image"
    bash scripts/infra.sh up >&2
    eval "$(bash scripts/infra.sh env)"
fi

run() { step "gen $*"; "$GEN" "$@" --project "$REPO"; }
if "$GEN" --help | grep -qw base; then run base build; fi
if "$GEN" --help | grep -qw lock; then run lock; fi
if "$GEN" --help | grep -qw fetch; then run fetch; fi
run render
run render --check
step "done: the rendered tasks are in $REPO/dataset"
