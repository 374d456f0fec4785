"""`gen verify-release`: check a release's signature, signer, Statement and every byte."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core.errors import UsageError
from generator.core.report import Report
from generator.release.release import verify_release
from generator.release.sign import (
    GITHUB_ISSUER,
    github_policy,
    identity_policy,
    load_public_key,
    load_trusted_root,
)


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "verify-release", help="verify a release: signature, signer, manifest and every file",
        description="Verify the Sigstore bundle and the signer's identity (or the key), then "
        "the in-toto Statement (payload type, predicate type, the manifest.json subject), then "
        "re-hash the archive (and --dataset DIR): any missing, extra or changed file fails, "
        "and every image in the manifest must be a signed subject. Exit 0 verified, 1 failed, "
        "2 usage error. The trust root always comes from the verifier, never from the release.")
    add_common(p)
    p.add_argument("release", metavar="DIR", help="the release directory")
    p.add_argument("--repository", metavar="ORG/REPO",
                   help="keyless: the GitHub repository whose workflow signed")
    p.add_argument("--ref", metavar="REF", help="keyless: with --repository, the git ref "
                   "(e.g. refs/tags/v1.2.3)")
    p.add_argument("--workflow", metavar="PATH", help="keyless: with --repository, the "
                   "workflow file (e.g. .github/workflows/release.yml)")
    p.add_argument("--cert-identity", metavar="X", help="keyless: the exact certificate "
                   "identity (SAN: workflow URI or email)")
    p.add_argument("--cert-oidc-issuer", metavar="URL", help="keyless: the OIDC issuer (with "
                   f"--repository the default is {GITHUB_ISSUER})")
    p.add_argument("--key", metavar="PUB.pem", action="append", default=[],
                   help="key mode: a trusted public key (repeatable: any one may match)")
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--trust-config", metavar="FILE",
                       help="keyless: a ClientTrustConfig or trusted_root.json to trust "
                            "(default: the public-good root via TUF)")
    trust.add_argument("--offline", action="store_true",
                       help="keyless: use the cached/embedded public-good root, no network")
    p.add_argument("--dataset", metavar="DIR",
                   help="also re-hash this dataset tree (e.g. dataset/ or an extracted archive)")
    p.add_argument("--check-images", action="store_true",
                   help="also resolve every image digest in its registry")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="accept a release made with --sign none (checks files only)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Report:
    release = Path(args.release)
    modes = [bool(args.key), bool(args.repository), bool(args.cert_identity)]
    if sum(modes) > 1:
        raise UsageError("pass one of --repository, --cert-identity or --key")
    if (args.ref or args.workflow) and not args.repository:
        raise UsageError("--ref and --workflow go with --repository")
    if args.cert_identity and not args.cert_oidc_issuer:
        raise UsageError("--cert-identity needs --cert-oidc-issuer")
    if args.cert_oidc_issuer and not (args.cert_identity or args.repository):
        raise UsageError("--cert-oidc-issuer goes with --cert-identity or --repository")
    if args.key and (args.trust_config or args.offline):
        raise UsageError("--trust-config/--offline are for keyless releases, not --key")
    if sum(modes) == 0 and not args.allow_unsigned:
        raise UsageError("say whom to trust",
                         hint="pass --repository ORG/REPO --ref REF, --cert-identity X "
                              "--cert-oidc-issuer Y, or --key PUB.pem")
    trust_path = Path(args.trust_config) if args.trust_config else None
    if trust_path is not None and release.is_dir() and \
            trust_path.resolve().is_relative_to(release.resolve()):
        raise UsageError("--trust-config must not come from inside the release",
                         hint="a release cannot vouch for its own trust root; use the one "
                              "you already trust (or the public-good default)")
    keys = [load_public_key(Path(k)) for k in args.key]
    policy = None
    if args.repository:
        policy = github_policy(args.repository, args.ref, args.workflow,
                               args.cert_oidc_issuer or GITHUB_ISSUER)
    elif args.cert_identity:
        policy = identity_policy(args.cert_identity, args.cert_oidc_issuer)

    def trusted_root() -> Any:
        return load_trusted_root(trust_path, offline=args.offline)

    res = verify_release(release, keys=keys, trusted_root_loader=trusted_root, policy=policy,
                         dataset=Path(args.dataset) if args.dataset else None,
                         check_images=args.check_images, allow_unsigned=args.allow_unsigned)
    report = Report("verify-release")
    report.data = {"release": str(res.release), "verified": True, "files": res.files,
                   "images": res.images, "checked": res.checked,
                   "signer": res.signer.to_json() if res.signer else None}
    if res.signer is None:
        who = "UNSIGNED (--allow-unsigned)"
    elif res.signer.mode == "keyless":
        who = f"{res.signer.identity} ({res.signer.issuer}), Rekor log index {res.signer.log_index}"
    else:
        who = f"key {res.signer.key_hint}"
    report.say(f"verified {res.release}: signed by {who}")
    report.say(f"  {res.files} files and {res.images} image digest"
               f"{'s' if res.images != 1 else ''} match the signed manifest "
               f"(checked: {', '.join(res.checked)})")
    return report
