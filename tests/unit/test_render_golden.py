"""Golden files: the example project rendered from frozen lockfiles must give exactly the files in
tests/data/golden/dataset/ (bytes and modes), so a template or render change shows as a diff to
review, not as a substring assertion that happens to still match.

The inputs are the repository's gen.yaml, tasks/ and templates/ with the lockfiles frozen in
tests/data/golden/lockfiles/: the repository's own lockfiles may be re-pinned on a later day
(when Debian drops a locked .deb), and this test must not depend on the mirror.

After an intended change, regenerate and review the diff:

    GEN_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_render_golden.py
    git diff tests/data/golden/
"""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

from generator.render.pipeline import render

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "data" / "golden"


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _project(tmp: Path) -> Path:
    project = tmp / "example"
    project.mkdir()
    shutil.copy2(REPO / "gen.yaml", project / "gen.yaml")
    for sub in ("tasks", "templates"):
        shutil.copytree(REPO / sub, project / sub)
    shutil.copytree(GOLDEN / "lockfiles", project / "lockfiles")
    return project


def _diff(name: str, want: bytes, got: bytes) -> str:
    try:
        a, b = want.decode().splitlines(keepends=True), got.decode().splitlines(keepends=True)
    except UnicodeDecodeError:
        return f"{name}: binary content differs\n"
    return "".join(difflib.unified_diff(a, b, f"golden/{name}", f"rendered/{name}", n=2))


def test_the_example_renders_to_the_golden_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    render(project, use_cache=False, jobs=1)
    got = _files(project / "dataset")
    if os.environ.get("GEN_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN / "dataset")
        shutil.copytree(project / "dataset", GOLDEN / "dataset")
        return
    want = _files(GOLDEN / "dataset")
    problems = [f"missing: {n}" for n in sorted(want.keys() - got.keys())]
    problems += [f"not in the golden files: {n}" for n in sorted(got.keys() - want.keys())]
    diffs = []
    for name in sorted(want.keys() & got.keys()):
        (w, wmode), (g, gmode) = want[name], got[name]
        if wmode != gmode:
            problems.append(f"{name}: mode {gmode:o}, golden {wmode:o}")
        if w != g:
            problems.append(f"{name}: content differs")
            diffs.append(_diff(name, w, g))
    assert not problems, "\n".join(problems) + "\n\n" + "".join(diffs[:3]) + \
        "\n(an intended change? see this file's docstring to regenerate)"
