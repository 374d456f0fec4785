"""Benchmark: `gen verify-reproducible` vs two plain cold builds of the same task.

    eval "$(gen infra env)"
    python bench/verify_bench.py [--project .] [--task fix-log-parser] [--engine buildah]

Needs the local infrastructure (registry with the base image, the engine) and a fetched
project. Prints the two cold builds (engine only: stage + build + export, nothing shared),
verify-reproducible's total, the ratio to one cold build (target <= 2.1) and what the
normalize + compare work adds to the two builds (target <= 5%).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.core.cas import default_store  # noqa: E402
from generator.image.build import project_engine, stage_context, vendored_files  # noqa: E402
from generator.image.engines.base import BuildRequest  # noqa: E402
from generator.image.engines.select import get_engine  # noqa: E402
from generator.image.verify import verify_project  # noqa: E402
from generator.lock.fetch import artifact_names  # noqa: E402
from generator.lock.lockset import read_lockset  # noqa: E402
from generator.spec.project import load_project  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--project", type=Path, default=ROOT)
    ap.add_argument("--task", default="fix-log-parser")
    ap.add_argument("--engine", default="buildah")
    args = ap.parse_args()
    project = load_project(args.project)
    task = next(t for t in project.tasks if t.id == args.task)
    store = default_store(project.root)
    vend = vendored_files(task, read_lockset(project.root), artifact_names(project.root), store)
    state = project.root / ".gen" / "bench"
    state.mkdir(parents=True, exist_ok=True)
    engine = get_engine(args.engine, state)
    cold = []
    for _ in range(2):
        with tempfile.TemporaryDirectory(dir=state) as tmp:
            t0 = time.perf_counter()
            ctx = Path(tmp) / "ctx"
            stage_context(project.root / "dataset" / task.id, vend, store, ctx,
                          epoch=project.config.source_date_epoch)
            engine.build(BuildRequest(context=ctx, out_layout=Path(tmp) / "oci", ref_name="x",
                                      epoch=project.config.source_date_epoch, isolated=True))
            cold.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    result = verify_project(project.root, only=[task.id],
                            engine=project_engine(project.root, args.engine))
    total = time.perf_counter() - t0
    [v] = result.verdicts
    s = v.seconds
    work = s["normalize_a"] + s["normalize_b"] + s["compare"]
    builds = s["build_a"] + s["build_b"] - s["normalize_a"] - s["normalize_b"]
    one = sum(cold) / len(cold)
    print(f"engine: {v.engine_a}; task {task.id}; identical={v.identical}")
    print(f"cold builds (engine only): {cold[0]:.1f}s, {cold[1]:.1f}s (mean {one:.1f}s)")
    print(f"verify-reproducible: {total:.1f}s = {total / one:.2f}x one cold build (target <= 2.1x;"
          " the two builds run concurrently)")
    print(f"normalize + compare: {work:.2f}s = {100 * work / builds:.1f}% of the two builds' "
          f"{builds:.1f}s (target <= 5%)")


if __name__ == "__main__":
    main()
