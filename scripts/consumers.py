#!/usr/bin/env python3
"""Virtualenvs with terminal-bench, Harbor and SWE-bench, for tests/consumers.

    scripts/consumers.py setup [tb|harbor|swebench|all]   create/refresh the venv(s); idempotent
    scripts/consumers.py setup compose                    Docker Compose v2 as a docker CLI plugin
    scripts/consumers.py python tb|harbor|swebench         print the venv's python (no setup)
    scripts/consumers.py freeze tb|harbor|swebench         print `pip freeze` (to refresh the pins)

The logic is in tests/consumers/venvs.py; the pins in scripts/constraints/NAME.txt.
Runs with any Python >= 3.9 (standard library only).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "consumers"))
import venvs

sys.exit(venvs.main(sys.argv[1:]))
