#!/usr/bin/env bash
# Prepares a project for building: its base image in the registry and its locked artifacts in
# the store. When the locked base cannot be rebuilt from Debian's mirror any more (-updates and
# -security move; superseded .debs leave the mirror) or a locked artifact cannot be downloaded,
# it says so in one line and re-pins (`gen lock --update`, then `gen render`) instead of failing.
#   bash scripts/prepare.sh GEN PROJECT
set -euo pipefail
GEN="$1"; PROJECT="$2"
note() { printf '[prepare] %s\n' "$*" >&2; }
repin() {
    note "NOTE: $1; re-pinning this checkout to today's mirror (gen lock --update && gen render)"
    "$GEN" lock --update --project "$PROJECT" >&2
    "$GEN" render --project "$PROJECT" >&2
}

# A declared base is built offline from its base lock's .debs, fetched from the mirror, the
# snapshot archive or the project's artifact cache (gen cache push): it fails only when one of
# them can be had from none of those.
if ! report="$("$GEN" base build --project "$PROJECT" --json)"; then
    repin "a locked .deb of the base can be had from no source (see the line above)"
    report="$("$GEN" base build --project "$PROJECT" --json)"
fi
printf '%s\n' "$report" >&2  # what the base build did (its --json report)
matches="$(printf '%s' "$report" | "$(dirname "$GEN")/python" -c \
    'import json, sys; print(json.load(sys.stdin).get("matches_lock"))')"
if [ "$matches" = "False" ]; then
    repin "the base rebuilt from Debian's mirror is not the one lockfiles/images.lock pins (the mirror moved since the lock)"
fi
if ! "$GEN" fetch --project "$PROJECT" >&2; then
    repin "a locked artifact can no longer be downloaded (see the line above)"
    "$GEN" fetch --project "$PROJECT" >&2
fi
