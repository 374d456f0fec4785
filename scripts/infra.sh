#!/usr/bin/env bash
# `gen infra` for this checkout: installs gen into .venv (scripts/bootstrap.sh) if needed, then
# runs `gen infra ACTION` with this repository as the project (state in .gen/infra/).
#
#   bash scripts/infra.sh install | up [--no-docker] | env | status | down
#
# The logic lives in generator/image/infra.py (`gen infra --help`): Debian's container tools, a
# registry on 127.0.0.1:5000 and a Docker engine with its own data root, socket and bridge,
# all stopped by PID.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$(bash "$REPO/scripts/bootstrap.sh")"
exec "$PY" -m generator infra "${@:-up}" --project "$REPO"
