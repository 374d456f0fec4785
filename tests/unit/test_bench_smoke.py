"""bench/render_bench.py keeps working (a small run; the figures themselves are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_render_bench_runs(tmp_path: Path) -> None:
    # 450 tasks: enough for the parallel path (400 and up)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "render_bench.py"), "--tasks", "450",
         "--repeat", "2", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for words in ("full render:      450 tasks, 4050 files", "best of 2:", "CPU time of that run",
                  "unchanged render: 450 tasks", "CPU check (", "CPU check just before each run:",
                  "file system:"):
        assert words in out, out
    assert list(tmp_path.iterdir()) == []  # the bench removes its project
