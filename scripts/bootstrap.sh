#!/usr/bin/env bash
# Creates the project's virtualenv (.venv) and installs gen into it with a plain
# `pip install .[test]` (not editable: this proves the wheel ships its templates).
# Idempotent; prints the venv's python on stdout.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GEN_VENV:-$REPO/.venv}"
PY="${GEN_PYTHON:-python3}"
log() { printf '[bootstrap] %s\n' "$*" >&2; }

if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    log "error: gen needs Python >= 3.11 ($PY is $("$PY" --version 2>&1))"; exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PY" -m venv "$VENV"
fi
# Reinstall when the sources changed since the last install (cheap stamp of tracked inputs).
stamp="$(cd "$REPO" && cat pyproject.toml $(find generator -type f \( -name '*.py' -o -name '*.j2' \) | sort) | sha256sum | cut -c1-16)"
if [ "$(cat "$VENV/.gen-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "installing gen into $VENV"
    tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
    pipq() { "$VENV/bin/python" -m pip install -q "$@" >"$tmp/pip.log" 2>&1 || { cat "$tmp/pip.log" >&2; exit 1; }; }
    # build in a temp copy so no build/ or *.egg-info lands in the work tree
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard 2>/dev/null \
        | tar --null -T - -cf - 2>/dev/null || tar -cf - --exclude=.venv --exclude=.gen --exclude=dataset .) \
        | tar -xf - -C "$tmp"
    pipq --force-reinstall --no-deps "$tmp"
    pipq "$tmp[test,dev]"
    echo "$stamp" > "$VENV/.gen-stamp"
fi
echo "$VENV/bin/python"
