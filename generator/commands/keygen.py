"""`gen keygen`: an Ed25519 (or P-256) key pair for `gen release --sign key`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.errors import UsageError
from generator.core.fsutil import atomic_write
from generator.core.report import Report
from generator.release.sign import generate_key, key_hint, load_public_key


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "keygen", help="write a key pair for `gen release --sign key`",
        description="Write <out>/release.key (PKCS#8 PEM, mode 0600, encrypted with "
        "$GEN_KEY_PASSWORD when set) and <out>/release.pub (the public key consumers pass to "
        "`gen verify-release --key`). Refuses to overwrite an existing key.")
    add_common(p)
    p.add_argument("--type", choices=("ed25519", "p256"), default="ed25519",
                   help="key type (default: ed25519)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="directory for the key pair (default: <project>/.gen/keys)")
    p.add_argument("--force", action="store_true", help="replace an existing key pair")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Report:
    out = Path(args.out) if args.out else Path(args.project) / state.KEYS
    priv_path, pub_path = out / "release.key", out / "release.pub"
    if priv_path.exists() and not args.force:
        raise UsageError(f"{priv_path} already exists",
                         hint="use it, or pass --force to replace it")
    priv, pub = generate_key(args.type)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(priv_path, priv, mode=0o600)
    atomic_write(pub_path, pub, mode=0o644)
    hint = key_hint(load_public_key(pub_path))
    report = Report("keygen")
    report.data = {"private_key": str(priv_path), "public_key": str(pub_path),
                   "type": args.type, "key_hint": hint}
    report.say(f"wrote {priv_path} (keep it secret) and {pub_path} ({args.type}, {hint})")
    return report
