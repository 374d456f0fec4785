"""A locked base the registry does not hold: `gen build` and `gen verify-reproducible` say so in
one line, before any engine runs (no wall of buildah's CNI warnings ahead of the one fact that
matters). The real local registry; nothing is built."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from generator.image import registry as reg
from generator.lock.lockfiles import split_ref
from generator.lock.lockset import apt_input
from generator.spec.project import load_project
from tests.integration.conftest import copy_example, need, run_gen

pytestmark = [pytest.mark.integration]

MISSING = "sha256:" + hashlib.sha256(b"gen test: a base manifest no registry holds").hexdigest()


def _repin_to_missing(project: Path) -> str:
    """Point images.lock's manifest digest (4th column; a 5th, the base lock's sha256, is
    kept) at MISSING, with the task apt locks re-keyed to it, as if `gen lock` had pinned a
    manifest that was never pushed. Returns the new pinned reference."""
    lock = project / "lockfiles" / "images.lock"
    lines, pinned = [], {}
    for line in lock.read_text().splitlines():
        cols = line.split("\t")
        if line.startswith("#") or len(cols) < 4:
            lines.append(line)
            continue
        repo = split_ref(cols[0])[0]
        pinned[f"{repo}@{cols[3]}"] = f"{repo}@{MISSING}"
        cols[3] = MISSING
        lines.append("\t".join(cols))
    lock.write_text("\n".join(lines) + "\n")
    assert len(pinned) == 1, pinned
    (old, new), = pinned.items()
    for task in load_project(project).tasks:
        path = project / "lockfiles" / "tasks" / task.id / "apt.lock"
        if not task.environment.apt or not path.is_file():
            continue
        names = task.environment.apt
        text = path.read_text()
        assert apt_input(old, names) in text, f"{path}: not keyed to {old}"
        text = text.replace(apt_input(old, names), apt_input(new, names)).replace(old, new)
        path.write_text(text)
    return new


def _one_error_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    line = lines[0]
    assert line.startswith(f"gen {command}: error: "), line
    assert "is not in the registry" in line and "gen base build" in line, line
    assert "level=warning" not in line and "WARN" not in line and "CNI" not in line, line
    return line


def test_missing_locked_base_is_one_line(registry: str, tmp_path: Path) -> None:
    need(shutil.which("buildah") is not None, "buildah is not installed (gen infra install)")
    project = copy_example(tmp_path / "p")
    missing = _repin_to_missing(project)
    assert reg.find_manifest(missing) is None, f"the registry holds {missing} after all"
    rendered = run_gen("render", "--project", str(project))
    assert rendered.returncode == 0, rendered.stderr
    froms = {line.split()[1] for d in (project / "dataset").iterdir()
             for line in (d / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")}
    assert froms == {missing}

    built = run_gen("build", "--project", str(project))
    assert built.returncode != 0
    line = _one_error_line(built.stderr, "build")
    assert missing in line
    assert not (project / ".gen" / "build" / "oci").exists()  # nothing was built

    verified = run_gen("verify-reproducible", "--project", str(project))
    assert verified.returncode != 0
    assert missing in _one_error_line(verified.stderr, "verify-reproducible")
