"""`gen fetch`: download every locked artifact into the content-addressed store."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from generator.commands import add_shard, selected
from generator.core.cas import default_store
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.lock.fetch import fetch_project


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "fetch", help="download every locked .deb, wheel and source into the hash-checked store",
        description="Download the artifacts lockfiles/ names into the content-addressed store "
        "(.gen/cas or $GEN_CAS), verifying each sha256 while streaming. Files already stored "
        "and verified are not downloaded again. Each artifact is tried from the lock's URLs, "
        "then (a .deb) the snapshot archive (gen.yaml snapshot_base, $GEN_SNAPSHOT_BASE), "
        "then the project's artifact cache in its registry (`gen cache push`).")
    add_common(p)
    p.add_argument("-j", "--jobs", type=int, default=4, metavar="N",
                   help="parallel downloads (default: 4)")
    p.add_argument("tasks", nargs="*", metavar="TASK", help="fetch only these task ids")
    add_shard(p)
    p.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    only, empty = selected(args)
    if empty is not None:
        return empty
    project = Path(args.project)
    store = default_store(project)
    started = time.perf_counter()
    with progress_bar("fetch", unit="file", enabled=not args.json) as bar:
        result = fetch_project(project, only=only, store=store, jobs=args.jobs,
                               progress=bar)
    elapsed = time.perf_counter() - started
    report = Report("fetch")
    report.data = {"store": str(store.root), "downloaded": sorted(result.downloaded),
                   "present": sorted(result.present), "bytes": result.bytes_downloaded,
                   "artifacts": result.artifacts, "sources": dict(result.sources),
                   "seconds": round(elapsed, 3)}
    report.say(f"fetched {len(result.artifacts)} artifacts into {store.root} in {elapsed:.1f}s: "
               f"{len(result.downloaded)} downloaded ({result.bytes_downloaded / 1e6:.1f} MB"
               f"{_by_source(result.sources)}), "
               f"{len(result.present)} already present and verified")
    return report


def _by_source(sources: dict[str, int]) -> str:
    """'; 3 from the mirror, 1 from the snapshot archive' (only the sources that served)."""
    names = {"mirror": "the mirror", "snapshot": "the snapshot archive",
             "cache": "the artifact cache"}
    parts = [f"{n} from {names.get(k, k)}" for k, n in sources.items() if n]
    return "; " + ", ".join(parts) if parts else ""
