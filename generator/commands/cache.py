"""`gen cache push` / `gen cache status`: the locked artifacts, kept in the project's registry."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from generator.core.cas import default_store
from generator.core.errors import EXIT_CHECK_FAILED
from generator.core.progress import progress_bar
from generator.core.report import Report
from generator.lock.artifact_cache import INDEX_FILE, CacheStatus, push, status

_PUSH = ("Make sure every locked artifact (the bases' and the tasks' .debs, wheels, sources) "
         "is in the store, fetching what is missing; upload each as blob sha256:<hex> of "
         "<registry>/artifacts (blobs the registry has are skipped); push an artifact index "
         "manifest listing them, tagged with the dataset version, and record its digest in "
         f"{INDEX_FILE} (`gen release` names it). `gen fetch` falls back to this cache when "
         "Debian's mirror and the snapshot archive no longer serve an artifact.")
_STATUS = ("Say which locked artifacts the registry's artifact cache lacks (exit 1 when any "
           "does) and whether the recorded artifact index is in the registry. Uploads nothing.")


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "cache", help="keep every locked artifact in the project's registry (outlives the "
        "mirror)", description=_PUSH)
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    a = csub.add_parser("push", help="upload every locked artifact and the artifact index",
                        description=_PUSH)
    add_common(a)
    a.add_argument("-j", "--jobs", type=int, default=4, metavar="N",
                   help="parallel downloads and uploads (default: 4)")
    a.add_argument("--check", action="store_true",
                   help="upload nothing: say which artifacts the registry lacks, exit 1 if "
                        "any (the same as `gen cache status`)")
    a.set_defaults(handler=run, busy="shared")
    s = csub.add_parser("status", help="which locked artifacts the registry lacks",
                        description=_STATUS)
    add_common(s)
    s.set_defaults(handler=run, busy="shared", check=True)


def _status_report(project: Path, command: str) -> Report:
    st: CacheStatus = status(project)
    report = Report(command)
    report.data = {
        "repository": st.repository, "artifacts": st.artifacts,
        "missing": [{"kind": a.kind, "filename": a.filename, "sha256": a.sha256,
                     "lock_file": a.lock_file, "entry": a.entry} for a in st.missing],
        "index": st.index, "index_present": st.index_present,
        "index_current": st.index_current,
    }
    if st.missing:
        report.exit_code = EXIT_CHECK_FAILED
        report.say(f"{command}: {len(st.missing)} of {st.artifacts} locked artifacts are not "
                   f"in {st.repository} (fix: run `gen cache push`):")
        report.lines += [f"  missing  {a.kind} {a.filename} ({a.lock_file}: {a.entry})"
                         for a in st.missing]
    else:
        report.say(f"{command}: all {st.artifacts} locked artifacts are in {st.repository}")
    if st.index is None:
        report.say(f"  no artifact index recorded ({INDEX_FILE}; `gen cache push` writes it)")
    else:
        where = "in the registry" if st.index_present else "NOT in the registry"
        if not st.index_present:
            report.exit_code = EXIT_CHECK_FAILED
        report.say(f"  artifact index {st.index['repository']}@{st.index['digest']} ({where})")
        if not st.index_current:
            report.exit_code = EXIT_CHECK_FAILED
            report.say("  the artifact index was pushed for other locks than the current ones "
                       "(fix: run `gen cache push`)")
    return report


def run(args: argparse.Namespace) -> Report:
    project = Path(args.project)
    command = f"cache {args.cache_command}"
    if args.check:
        return _status_report(project, command)
    store = default_store(project)
    started = time.perf_counter()
    with progress_bar("fetch", unit="file", enabled=not args.json) as fbar, \
            progress_bar("cache push", unit="file", enabled=not args.json) as ubar:
        res = push(project, store=store, jobs=args.jobs, fetch_progress=fbar, progress=ubar)
    elapsed = time.perf_counter() - started
    fetched = res.fetched
    report = Report(command)
    report.data = {
        "repository": res.repository, "digest": res.digest, "tag": res.tag,
        "artifacts": res.artifacts, "uploaded": res.uploaded, "present": res.present,
        "bytes_uploaded": res.bytes_uploaded, "index_file": str(project / INDEX_FILE),
        "store": str(store.root), "seconds": round(elapsed, 3),
        "fetched": {"downloaded": len(fetched.downloaded) if fetched else 0,
                    "sources": dict(fetched.sources) if fetched else {}},
    }
    report.say(f"cache push: {res.artifacts} artifacts in {res.repository} in {elapsed:.1f}s: "
               f"{len(res.uploaded)} uploaded ({res.bytes_uploaded / 1e6:.1f} MB), "
               f"{len(res.present)} already there")
    if fetched and fetched.downloaded:
        report.say(f"  fetched {len(fetched.downloaded)} missing from the store first")
    report.say(f"  artifact index {res.repository}:{res.tag} = {res.digest} "
               f"(recorded in {INDEX_FILE})")
    return report
