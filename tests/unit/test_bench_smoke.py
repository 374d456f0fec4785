"""bench/render_bench.py keeps working (a small run; the figures themselves are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "render_bench.py"), *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_render_bench_runs(tmp_path: Path) -> None:
    # 450 tasks: enough for the parallel path (400 and up)
    proc = _bench("--tasks", "450", "--repeat", "2", "--dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for words in ("full render:      450 tasks, 4050 files", "best of 2:", "CPU time of that run",
                  "unchanged render: 450 tasks", "CPU check (", "CPU check just before each run:",
                  "file system:"):
        assert words in out, out
    assert list(tmp_path.iterdir()) == []  # the bench removes its project


def test_render_bench_reuses_a_kept_project(tmp_path: Path) -> None:
    """--keep DIR a second time renders the same project into new output dirs."""
    keep = tmp_path / "kept"
    outs = []
    for _ in range(2):
        proc = _bench("--tasks", "20", "--repeat", "1", "--keep", str(keep))
        assert proc.returncode == 0, proc.stderr
        assert "full render:      20 tasks, 180 files" in proc.stdout, proc.stdout
        outs.append(proc.stdout)
    assert "generated 20 synthetic tasks" in outs[0]
    assert "reusing the 20 synthetic tasks" in outs[1]
    assert sorted(p.name for p in keep.glob("out-*")) == ["out-0", "out-1"]
    assert len(list((keep / "out-1").iterdir())) == 20
    # another size: refused, nothing touched
    proc = _bench("--tasks", "21", "--repeat", "1", "--keep", str(keep))
    assert proc.returncode == 2 and "pass a new --keep DIR" in proc.stderr, proc.stderr
    assert sorted(p.name for p in keep.glob("out-*")) == ["out-0", "out-1"]


def test_render_instructions_phases_run(tmp_path: Path) -> None:
    """The phases bench/render_instructions.py counts under valgrind run (here without it)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import render_instructions as ri  # type: ignore[import-not-found]
        from render_bench import make_project  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    make_project(tmp_path / "p", 3)
    for phase in ri.PHASES:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "render_instructions.py"), "--child", phase,
             "3", str(tmp_path / "p"), str(tmp_path / "scratch")],
            capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
    # cumulative counts (baseline run, baseline + n) become each phase's own cost
    got = ri.per_task({"load": (100, 1100), "render": (200, 3200), "write": (300, 6300)}, 10)
    assert got == {"load": 100.0, "render": 200.0, "write": 300.0, "total": 600.0}
