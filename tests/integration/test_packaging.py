"""A plain `pip install .` in a fresh venv gives a working `gen` whose templates (and `gen
init`'s skeleton) come from the wheel, and `gen render --check` passes on this repository (the
example dataset)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


def _copy_sources(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def test_pip_install_then_render_check(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _copy_sources(src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    gen = venv / "bin" / "gen"
    # the installed package must not import from the source tree
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import generator.render.templates as r; print(r.PACKAGE_TEMPLATES)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert str(venv) in where and Path(where, "terminal", "Dockerfile.j2").is_file()
    help_out = subprocess.run([str(gen), "--help"], capture_output=True, text=True, check=True)
    assert "render" in help_out.stdout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run([str(gen), "render", "--check", "--project", str(REPO)],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "up to date" in check.stdout
    # `gen init` finds its skeleton inside the installed wheel
    init = subprocess.run([str(gen), "init", "--project", str(tmp_path / "new-ds"), "--json"],
                          cwd=tmp_path, capture_output=True, text=True, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "tasks/hello-world/task.spec.yaml" in init.stdout
    assert (tmp_path / "new-ds" / "tasks" / "hello-world" / "solution.sh").stat().st_mode & 0o111
    # ...and the infrastructure its next steps name comes with the wheel too (no checkout)
    own_env = {k: v for k, v in env.items() if k != "GEN_INFRA"}
    status = subprocess.run([str(gen), "infra", "status", "--project", str(tmp_path / "new-ds"),
                             "--json"], cwd=tmp_path, capture_output=True, text=True, env=own_env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["state"] == str(tmp_path / "new-ds" / ".gen" / "infra")
