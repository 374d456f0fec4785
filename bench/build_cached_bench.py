"""Benchmark: `gen build` on N already-built tasks (all cache hits).

    eval "$(gen infra env)"
    python bench/build_cached_bench.py [--tasks 200] [--jobs 2] [--keep DIR]

Makes a project of N small terminal tasks on the locked base (a dataset template that skips
the Debian install keeps the one-time builds short), locks, renders, fetches and builds them
once (slow: real builds), then times `gen build` again: every task must be a cache hit.
Target: <= 2 s for 200 tasks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import yaml  # noqa: E402
from helpers import GEN_YAML, TERMINAL_FILES, build_file_tree, terminal_spec  # noqa: E402

from generator.image.build import build_project, project_engine  # noqa: E402
from generator.lock.lock import lock_project  # noqa: E402
from generator.render.pipeline import render  # noqa: E402

TEMPLATE = """{% import "_macros.j2" as m with context -%}
{{ m.preamble() }}
WORKDIR /app
COPY files/app/hello.py /app/hello.py
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="reuse/keep the project here (skips re-building)")
    args = ap.parse_args()
    registry = os.environ.get("GEN_REGISTRY", "127.0.0.1:5000")
    work = args.keep or Path(tempfile.mkdtemp(prefix="gen-build-bench-"))
    try:
        if not (work / "gen.yaml").exists():
            cfg = {**GEN_YAML, "registry": f"{registry}/gen-bench",
                   "defaults": {**GEN_YAML.get("defaults", {}),
                                "base_image": f"{registry}/gen/debian:bookworm",
                                "apt": ["tmux"]}}
            work.mkdir(parents=True, exist_ok=True)
            (work / "gen.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            build_file_tree(work, {"templates/terminal/Dockerfile.j2": TEMPLATE})
            for i in range(args.tasks):
                d = work / "tasks" / f"t{i:04d}"
                d.mkdir(parents=True)
                spec = terminal_spec(instruction=f"Task {i}: fix /app/hello.py.\n",
                                     environment={"apt": []})
                (d / "task.spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
                build_file_tree(d, {**TERMINAL_FILES, "app/hello.py": f"print('helo {i}')\n"})
            t0 = time.perf_counter()
            lock_project(work, only=["t0000"])
            for i in range(1, args.tasks):  # same base + same apt list: the same lock
                shutil.copytree(work / "lockfiles/tasks/t0000", work / f"lockfiles/tasks/t{i:04d}")
            render(work)
            subprocess.run([sys.executable, "-m", "generator", "fetch", "--project", str(work)],
                           check=True)
            print(f"setup (lock, render, fetch): {time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        _, first = build_project(work, engine=project_engine(work), jobs=args.jobs)
        built = sum(1 for o in first if not o.cached)
        print(f"first build: {len(first)} tasks, {built} built, in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "generator", "build", "--project",
                               str(work), "--json"], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        import json

        report = json.loads(proc.stdout)
        cached = sum(1 for t in report["tasks"].values() if t["cached"])
        print(f"gen build, all cached: {cached}/{len(report['tasks'])} tasks cached in "
              f"{wall:.2f}s wall (process start included; target <= 2 s)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
