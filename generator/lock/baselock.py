"""A base image as a locked derivation: its package closure resolved once (`gen lock`), its
rootfs built only from the locked .debs (`gen base build`), offline.

Resolving: one mmdebstrap run against the declared sources (the same variant and includes
the build uses) records what it installs (`dpkg-query` in a customize hook, the rootfs is
thrown away); each of those exact versions is then looked up in a private apt root whose
indices apt verified against the suites' signed InRelease files (`generator.lock.aptlock`), which
gives its sha256, size and pool URL. The lock also records when it was made (the snapshot
archive timestamp that serves the same files after the mirror dropped them) and the Date of
each Release it came from.

Building: the locked .debs (verified in the content-addressed store) become a flat local
repository (Packages made from the .debs' own control data, a minimal Release), and mmdebstrap
installs from it alone (`[trusted=yes]`: every file was checked against the lock's sha256,
which came from Debian's signed indices). A customize hook writes the declared sources into
/etc/apt/sources.list (what task apt locks resolve against), fixed /etc/hostname and
/etc/resolv.conf (mmdebstrap copies the host's), and lists what was installed: the build
fails unless that is exactly the lock. The rootfs is then a function of the lock and
SOURCE_DATE_EPOCH only.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from generator.core import proc
from generator.core.cas import Store
from generator.core.errors import LockError, ToolError
from generator.lock.aptlock import AptResolver, BaseFiles
from generator.lock.lockfiles import AptPackage, BaseLock, base_input
from generator.spec.model import BaseDecl

__all__ = ["build_rootfs", "declared_input", "mmdebstrap_options", "resolve_base_lock"]

ARCH = {"amd64": "amd64", "arm64": "arm64"}
# the files mmdebstrap copies from the host; the base gets fixed ones instead
HOSTNAME = "localhost\n"
RESOLV_CONF = "# the container engine provides /etc/resolv.conf at run time\n"
_QUERY = (r'dpkg-query --admindir="$1/var/lib/dpkg" -W '
          r'-f="\${Package}\t\${Version}\t\${Architecture}\n"')


def arch_of(platform: str) -> str:
    arch = ARCH.get(platform.split("/")[1] if "/" in platform else platform)
    if arch is None:
        raise LockError(f"no Debian base recipe for platform {platform}", file="gen.yaml",
                        field="platforms", hint="use linux/amd64 or linux/arm64")
    return arch


def declared_input(decl: BaseDecl, platform: str) -> str:
    return base_input(decl.ref, decl.suite, decl.variant, decl.include, decl.sources(),
                      platform)


def mmdebstrap_options(variant: str, arch: str, include: Sequence[str]) -> list[str]:
    mode = "root" if os.geteuid() == 0 else "unshare"
    cmd = ["mmdebstrap", f"--variant={variant}", f"--mode={mode}", f"--architectures={arch}",
           "--quiet",
           "--aptopt=Acquire::Check-Valid-Until \"false\"",
           "--dpkgopt=path-exclude=/usr/share/doc/*",
           "--dpkgopt=path-include=/usr/share/doc/*/copyright",
           "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*"]
    if include:
        cmd.append("--include=" + ",".join(include))
    return cmd


def _installed(listing: Path) -> list[tuple[str, str, str]]:
    out = []
    for line in listing.read_text().splitlines():
        if line.strip():
            name, version, arch = line.split("\t")
            out.append((name, version, arch))
    return sorted(out)


def _releases(lists: Path) -> tuple[str, ...]:
    """'<suite>=<Date>' of each InRelease apt verified (RFC 3339, UTC)."""
    out = []
    for f in sorted(lists.glob("*InRelease")):
        fields: dict[str, str] = {}
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(" ") or ":" not in line:
                if line.startswith("SHA256:") or line.startswith("MD5Sum:"):
                    break
                continue
            k, _, v = line.partition(":")
            fields.setdefault(k.strip(), v.strip())
        name = fields.get("Codename") or fields.get("Suite")
        if name and "Date" in fields:
            when = parsedate_to_datetime(fields["Date"]).astimezone(UTC)
            out.append(f"{name}={when.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return tuple(sorted(set(out)))


def resolve_base_lock(decl: BaseDecl, platform: str, workdir: Path, *, file: str,
                      now: datetime | None = None) -> BaseLock:
    """Resolve `decl`'s full closure against Debian's mirror today (network)."""
    arch = arch_of(platform)
    workdir.mkdir(parents=True, exist_ok=True)
    snapshot = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".closure-") as tmp:
        listing = Path(tmp) / "installed.tsv"
        cmd = [*mmdebstrap_options(decl.variant, arch, decl.include), "--format=null",
               f"--customize-hook={_QUERY} > {shlex.quote(str(listing))}",
               decl.suite, "/dev/null", *decl.sources()]
        proc.run(cmd, what=f"resolve the {decl.suite} base's closure with mmdebstrap ({file})",
                 timeout=1800, extra_env={"LC_ALL": "C.UTF-8", "TZ": "UTC"},
                 fix="check that the mirror is reachable and mmdebstrap is installed "
                     "(`gen infra install`)")
        installed = _installed(listing)
        empty = Path(tmp) / "status"
        empty.write_text("")
        resolver = AptResolver(BaseFiles("", empty, tuple(decl.sources()), arch),
                               workdir / "roots")
        packages = resolver.locate(installed, file=file)
        releases = _releases(resolver.root / "var/lib/apt/lists")
    return BaseLock(input=declared_input(decl, platform), ref=decl.ref, suite=decl.suite,
                    variant=decl.variant, snapshot=snapshot, releases=releases,
                    sources=tuple(decl.sources()), packages=tuple(packages))


# --------------------------------------------------------------------------------------
# Building from the lock
# --------------------------------------------------------------------------------------


def _control(deb: Path) -> str:
    out = proc.run(["dpkg-deb", "-f", str(deb)], what=f"read the control data of {deb.name}")
    return str(out.stdout).rstrip("\n")


def write_flat_repo(packages: Sequence[AptPackage], store: Store, repo: Path, *,
                    suite: str, epoch: int) -> None:
    """A flat apt repository of the locked .debs (symlinks into the store)."""
    repo.mkdir(parents=True, exist_ok=True)
    stanzas = []
    for p in sorted(packages, key=lambda p: (p.name, p.arch)):
        deb = repo / p.filename
        deb.symlink_to(store.path(p.sha256).resolve())
        stanzas.append(f"{_control(deb)}\nFilename: ./{p.filename}\nSize: {p.size}\n"
                       f"SHA256: {p.sha256}\n")
    index = "\n".join(stanzas).encode()
    (repo / "Packages").write_bytes(index)
    date = format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)
    arches = " ".join(sorted({p.arch for p in packages} | {"all"}))
    (repo / "Release").write_text(
        f"Origin: gen\nLabel: gen base lock\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: {date}\nArchitectures: {arches}\nSHA256:\n"
        f" {hashlib.sha256(index).hexdigest()} {len(index)} Packages\n")


def build_rootfs(lock: BaseLock, store: Store, out_tar: Path, *, platform: str, epoch: int,
                 include: Sequence[str], file: str) -> None:
    """mmdebstrap the locked closure (every .deb already verified in `store`) into a tar."""
    arch = arch_of(platform)
    missing = [p.filename for p in lock.packages if not store.has(p.sha256, verify=False)]
    if missing:
        raise ToolError(f"{len(missing)} locked .debs of {lock.ref} are not in the store "
                        f"(e.g. {missing[0]})", hint="run `gen fetch`")
    with tempfile.TemporaryDirectory(dir=out_tar.parent, prefix=".base-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        write_flat_repo(lock.packages, store, repo, suite=lock.suite, epoch=epoch)
        (work / "sources.list").write_text("".join(f"{s}\n\n" for s in lock.sources)[:-1])
        (work / "hostname").write_text(HOSTNAME)
        (work / "resolv.conf").write_text(RESOLV_CONF)
        listing = work / "installed.tsv"
        q = {k: shlex.quote(str(work / k)) for k in ("sources.list", "hostname", "resolv.conf")}
        hooks = [f'cat {q["sources.list"]} > "$1/etc/apt/sources.list"',
                 f'rm -f "$1/etc/hostname" "$1/etc/resolv.conf"; '
                 f'install -m 0644 {q["hostname"]} "$1/etc/hostname"; '
                 f'install -m 0644 {q["resolv.conf"]} "$1/etc/resolv.conf"',
                 f"{_QUERY} > {shlex.quote(str(listing))}"]
        # every locked package by name: the local repository holds exactly the closure, and
        # naming it all keeps the selection from depending on index-only fields (Priority
        # overrides are in Debian's index, not in the .debs' control data)
        names = sorted({*include, *(p.name for p in lock.packages)})
        cmd = [*mmdebstrap_options(lock.variant, arch, names), "--format=tar",
               *(f"--customize-hook={h}" for h in hooks),
               lock.suite, str(out_tar), f"deb [trusted=yes] copy://{repo} ./"]
        proc.run(cmd, what=f"build the {lock.suite} base from {file} with mmdebstrap (offline)",
                 timeout=1800,
                 extra_env={"SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC"},
                 fix="check that mmdebstrap is installed (`gen infra install`)")
        got = _installed(listing)
    want = sorted((p.name, p.version, p.arch) for p in lock.packages)
    if got != want:
        extra = sorted(set(got) - set(want))
        lacking = sorted(set(want) - set(got))
        raise ToolError(f"the base built from {file} is not its closure: "
                        f"{len(lacking)} locked packages not installed "
                        f"({', '.join(n for n, _, _ in lacking[:5])}), {len(extra)} not locked "
                        f"({', '.join(n for n, _, _ in extra[:5])})",
                        hint="run `gen lock --update` to resolve the base again")

