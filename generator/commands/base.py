"""`gen base build`: the locally built, reproducible Debian base image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core.report import Report
from generator.image.base import build_base
from generator.lock.lockset import read_lockset


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "base", help="build the reproducible Debian base image and push it to the registry",
        description="Base images built from Debian's packages (mmdebstrap + SOURCE_DATE_EPOCH), "
        "wrapped into a deterministic OCI layout and pushed with their digest preserved.")
    bsub = p.add_subparsers(dest="base_command", metavar="ACTION", required=True)
    b = bsub.add_parser("build", help="build (or reuse) the base rootfs, write the OCI layout, "
                        "push it")
    add_common(b)
    b.add_argument("--ref", help="tag to push (default: gen.yaml defaults.base_image)")
    b.add_argument("--suite", default="bookworm", help="Debian suite (default: bookworm)")
    b.add_argument("--include", action="append", default=[], metavar="PKG",
                   help="extra Debian package in the base (repeatable)")
    b.add_argument("--rebuild", action="store_true",
                   help="run mmdebstrap again even when the stored rootfs can be reused")
    b.add_argument("--no-push", action="store_true", help="write the OCI layout only")
    b.set_defaults(handler=run, busy="shared")


def run(args: argparse.Namespace) -> Report:
    result = build_base(Path(args.project), ref=args.ref, suite=args.suite,
                        include=tuple(args.include), rebuild=args.rebuild,
                        push=not args.no_push)
    report = Report("base build")
    report.data = {
        "ref": result.ref, "index_digest": result.index_digest,
        "manifest_digest": result.manifest_digest, "pinned": result.pinned,
        "rootfs_sha256": result.rootfs_sha256, "layout": result.layout,
        "built": result.built, "pushed": result.pushed, "seconds": result.seconds,
        "base_lock": result.base_lock or None,
    }
    how = "built with mmdebstrap" if result.built else "reused the stored rootfs"
    if result.base_lock:
        how += f" from its base lock (sha256:{result.base_lock[:12]}, offline)"
    report.say(f"base {result.ref}: {how} (rootfs sha256:{result.rootfs_sha256[:12]})")
    report.say(f"  index    {result.index_digest}")
    report.say(f"  manifest {result.manifest_digest} ({result.pinned})")
    report.say("  pushed to the registry, digest preserved" if result.pushed
               else f"  not pushed; OCI layout at {result.layout}")
    locks = read_lockset(Path(args.project))
    pinned = [p for p in locks.images.pins if p.ref == result.ref]
    drift = [p for p in pinned if p.index_digest != result.index_digest]
    report.data["matches_lock"] = None if not pinned else not drift
    if drift and result.base_lock:
        report.say(f"  warning: lockfiles/images.lock pins {drift[0].index_digest} for this tag, "
                   "not the digest its base lock yields (fix: `gen lock`)")
    elif drift:
        report.say(f"  warning: lockfiles/images.lock pins {drift[0].index_digest} for this tag; "
                   "the Debian mirror moved since it was locked (fix: keep the old image, or "
                   "run `gen lock --update` to re-pin)")
    elif pinned:
        report.say("  matches lockfiles/images.lock")
    return report
