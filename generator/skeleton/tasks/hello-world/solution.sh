#!/bin/bash
# Reference solution: `gen validate` runs the tests before it (they must fail) and after it
# (they must pass).
set -euo pipefail
cat > /app/greet.py <<'PY'
import sys

name = sys.argv[1] if len(sys.argv) > 1 else "world"
print(f"Hello, {name}!")
PY
