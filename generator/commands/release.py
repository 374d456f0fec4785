"""`gen release`: a signed manifest of every dataset file and image digest, plus an archive."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core.errors import UsageError
from generator.core.report import Report
from generator.release.preflight import CHECKS
from generator.release.release import artifact_index, check_release, collect_manifest, make_release
from generator.release.sign import load_private_key, load_signing_config, resolve_identity_token


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "release", help="write a signed manifest of the dataset, its images and an archive",
        description="First check that the release is one consistent set (lockfiles/ and "
        "dataset/ current, every task's image built from the current inputs, validated and "
        "verified reproducible; exit 1 and nothing written otherwise). Then hash every file "
        "of dataset/, every built image digest, the lockfiles and "
        "the validation/reproducibility reports into manifest.json (RFC 8785), sign an in-toto "
        "Statement (SLSA provenance v1) over it as a Sigstore bundle, and write a deterministic "
        "archive of the dataset beside it. Everything is written to a temp directory and "
        "renamed into place.")
    add_common(p)
    p.add_argument("--sign", choices=("keyless", "key", "none"), default="keyless",
                   help="keyless: Sigstore (Fulcio + Rekor, OIDC identity); key: an Ed25519 or "
                        "P-256 key (--key); none: unsigned (default: keyless)")
    p.add_argument("--key", metavar="FILE", help="PEM private key for --sign key "
                   "($GEN_KEY_PASSWORD if encrypted)")
    p.add_argument("--trust-config", metavar="FILE",
                   help="keyless: a Sigstore ClientTrustConfig JSON (private instance); "
                        "default: the public-good instance")
    p.add_argument("--identity-token", metavar="TOKEN|@FILE",
                   help="keyless: the OIDC token (default: $GEN_IDENTITY_TOKEN, "
                        "$SIGSTORE_IDENTITY_TOKEN, then the CI's ambient credentials)")
    p.add_argument("--out", metavar="DIR",
                   help="release directory, outside dataset/ (e.g. release); required unless "
                        "--dry-run")
    p.add_argument("--dry-run", action="store_true",
                   help="only make the checks and hash what would be released: exit 0 when "
                        "a release would be made, 1 (with every problem) when not; writes "
                        "and signs nothing")
    p.add_argument("--allow", action="append", default=[], metavar="WHAT",
                   choices=(*CHECKS.values(), "all"),
                   help="waive one of the checks made before signing (repeatable): "
                        "stale-locks, stale-dataset, stale-images, unvalidated, unverified, "
                        "or all. By default lockfiles/, dataset/ and every image must be "
                        "current and every image validated and verified reproducible")
    p.set_defaults(handler=run, busy="snapshot")  # what it checks is what it signs


def _dry_run(project: Path, allow: list[str]) -> Report:
    checked = check_release(project, allow=allow)
    index, index_note = artifact_index(project)
    manifest, _archive, _dataset = collect_manifest(project, artifact_index=index)
    report = Report("release")
    n_images = sum(len(p) for p in manifest.images.values())
    report.data = {"dry_run": True, "files": len(manifest.files), "images": n_images,
                   "reports": sorted(manifest.reports), "checks": checked.to_json(),
                   "artifact_index": index, "artifact_index_note": index_note or None}
    report.say(f"release --dry-run: a release would hold {len(manifest.files)} files and "
               f"{n_images} image digest{'s' if n_images != 1 else ''}; checked "
               f"{checked.summary()}")
    report.lines += [f"  note: {note}" for note in checked.notes]
    report.say(_index_line(index, index_note))
    return report


def _index_line(index: dict[str, str] | None, note: str) -> str:
    if index is None:
        return f"  note: {note}"
    return f"artifacts {index['repository']}@{index['digest']} (the artifact index)"


def run(args: argparse.Namespace) -> Report:
    project = Path(args.project)
    if args.dry_run:
        return _dry_run(project, args.allow)
    if not args.out:
        raise UsageError("gen release needs --out DIR", hint="e.g. --out release, or --dry-run "
                         "to only check")
    key = trust = token = None
    if args.sign == "key":
        if not args.key:
            raise UsageError("--sign key needs --key FILE", hint="create one with `gen keygen`")
        key = load_private_key(Path(args.key))
    elif args.key:
        raise UsageError("--key is only for --sign key")
    if args.sign == "keyless":
        token = resolve_identity_token(args.identity_token)
        trust = load_signing_config(Path(args.trust_config) if args.trust_config else None)
    elif args.trust_config or args.identity_token:
        raise UsageError("--trust-config and --identity-token are only for --sign keyless")
    res = make_release(project, Path(args.out), sign=args.sign, key=key, trust_config=trust,
                       identity_token=token, allow=args.allow)
    report = Report("release")
    report.data = {
        "out": str(res.out), "manifest": str(res.out / "manifest.json"),
        "manifest_sha256": res.manifest_sha256, "files": res.files, "images": res.images,
        "archive": str(res.out / res.archive), "archive_sha256": res.archive_sha256,
        "sign": res.sign, "bundle": str(res.bundle) if res.bundle else None,
        "signer": res.signer.to_json() if res.signer else None, "reports": res.reports,
        "checks": res.preflight.to_json() if res.preflight else None,
        "artifact_index": res.artifact_index,
        "artifact_index_note": res.artifact_index_note or None,
    }
    report.say(f"manifest {res.out / 'manifest.json'}: {res.files} files, {res.images} image "
               f"digest{'s' if res.images != 1 else ''} (sha256 {res.manifest_sha256[:16]}…)")
    report.say(f"archive  {res.out / res.archive} ({res.archive_sha256[:23]}…)")
    report.say(_index_line(res.artifact_index, res.artifact_index_note))
    if res.preflight is not None:
        report.say(f"checked  {res.preflight.summary()}")
        report.lines += [f"  note: {note}" for note in res.preflight.notes]
    if res.bundle and res.signer:
        who = (f"{res.signer.identity} ({res.signer.issuer}), Rekor log index "
               f"{res.signer.log_index}" if res.signer.mode == "keyless"
               else f"key {res.signer.key_hint}")
        report.say(f"signed   {res.bundle}: {who}")
    else:
        report.say("unsigned (--sign none): `gen verify-release --allow-unsigned` checks "
                   "files only")
    return report
