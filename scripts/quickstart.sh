#!/usr/bin/env bash
# Set up gen on this machine and run the pipeline on the example dataset (this repository).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
step() { printf '\n==> %s\n' "$*" >&2; }

step "installing gen into .venv"
PY="$(bash scripts/bootstrap.sh)"
GEN="$(dirname "$PY")/gen"

step "local infrastructure: Debian tools, registry on 127.0.0.1, Docker engine"
"$GEN" infra up --project "$REPO" >&2
eval "$("$GEN" infra env --project "$REPO")"

run() { step "gen $*"; "$GEN" "$@" --project "$REPO"; }
step "the base image and the locked artifacts (re-pinned, with a note, if Debian's mirror moved)"
bash scripts/prepare.sh "$GEN" "$REPO"
run lock
run render
run render --check
step "done: the rendered tasks are in $REPO/dataset"
run build
run verify-reproducible
step "done: images built, pushed by digest and proven byte-identical (.gen/verify/report.json)"
run validate --strength -j 2

# Release: a signed manifest of every dataset file and image digest, plus a deterministic archive.
# Key mode (no Sigstore service is reachable here; CI releases keyless, see BUILD.md). The key
# pair lives under .gen/keys/ and is made once; the release goes to .gen/release/ (outside
# dataset/, which Terminal-Bench treats as a list of tasks).
KEYS="$REPO/.gen/keys"
if [ ! -f "$KEYS/release.key" ]; then run keygen --out "$KEYS"; fi
run release --sign key --key "$KEYS/release.key" --out "$REPO/.gen/release"
run verify-release "$REPO/.gen/release" --key "$KEYS/release.pub" --dataset "$REPO/dataset"
step "done: signed release in $REPO/.gen/release (verify with the command above)"
