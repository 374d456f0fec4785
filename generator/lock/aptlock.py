"""Resolve Debian packages to exact versions + sha256 against a pinned base image.

apt does the resolving, on the host, in a private root that looks like the base image to it:
the base's own `/var/lib/dpkg/status` (so the closure is exactly what the base lacks) and its
own sources (so versions come from the suites the base was built from). `apt-get update` checks
each suite's InRelease signature with Debian's archive keyring and each Packages index against
InRelease, so every sha256 in the lock comes from Debian's signed indices. Nothing of the
host's apt state or configuration is used or changed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.core import proc
from generator.core.errors import LockError, ToolError
from generator.image import registry
from generator.lock.lockfiles import AptPackage

__all__ = ["AptResolver", "BaseFiles", "base_files"]

KEYRING = Path(os.environ.get("GEN_DEBIAN_KEYRING",
                              "/usr/share/keyrings/debian-archive-keyring.gpg"))
_WANTED = ("etc/apt/sources.list", "var/lib/dpkg/status", "etc/debian_version")
_INST_RE = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*?\[(\S+)\]\)", re.MULTILINE)
_URI_RE = re.compile(r"^'([^']+)' (\S+) (\d+) ", re.MULTILINE)


@dataclass(frozen=True)
class BaseFiles:
    """What apt needs to know of a base image."""

    pinned: str  # repository@manifest digest
    status: Path  # its dpkg status file
    sources: tuple[str, ...]  # its one-line apt sources
    arch: str


def _sources_from(root: Path) -> list[str]:
    lines: list[str] = []
    files = [root / "etc/apt/sources.list"]
    d = root / "etc/apt/sources.list.d"
    if d.is_dir():
        files += sorted(d.glob("*.list"))
    for f in files:
        if f.is_file():
            for line in f.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line.startswith("deb "):
                    lines.append(line)
        # deb822 .sources files of a base are not parsed: gen's bases use one-line sources
    return lines


def base_files(pin_ref: str, manifest_digest: str, arch: str, cache: Path) -> BaseFiles:
    """Extract dpkg status + apt sources of an image in the registry (cached by digest)."""
    repo = pin_ref.split("@", 1)[0]
    pinned = f"{repo}@{manifest_digest}"
    out = cache / manifest_digest.split(":", 1)[1]
    if not (out / "var/lib/dpkg/status").is_file():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ref = registry.parse_ref(pinned)
        _, _, manifest = registry.get_manifest(ref, manifest_digest)
        for layer in manifest["layers"]:
            blob = tmp / "layer.blob"
            registry.fetch_blob(pinned, layer["digest"], blob)
            opener = gzip.open if "gzip" in layer["mediaType"] else open
            with opener(blob, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    name = member.name.lstrip("./")
                    if not member.isfile():
                        continue
                    if name in _WANTED or (name.startswith("etc/apt/sources.list.d/")
                                           and name.endswith(".list")):
                        fh = tar.extractfile(member)
                        assert fh is not None
                        target = tmp / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(fh.read())
            blob.unlink()
        if not (tmp / "var/lib/dpkg/status").is_file():
            raise LockError(f"base image {pinned} has no /var/lib/dpkg/status",
                            file="lockfiles/images.lock", field=repo,
                            hint="Debian packages need a Debian-based base image")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    sources = tuple(_sources_from(out))
    if not sources:
        raise LockError(f"base image {pinned} has no apt sources (/etc/apt/sources.list)",
                        file="lockfiles/images.lock", field=repo,
                        hint="build the base with `gen base build`")
    return BaseFiles(pinned, out / "var/lib/dpkg/status", sources, arch)


def _package(record: dict[str, str] | None, by_file: dict[str, str], name: str, version: str,
             arch: str, *, file: str) -> AptPackage:
    """A lock entry from a signed index record and apt's download URL for it."""
    if record is None:
        raise ToolError(f"the signed index has no record of {name}={version} ({arch}): the "
                        f"mirror moved while resolving ({file})",
                        hint="run `gen lock --update` again")
    fname = urllib.parse.unquote(record["Filename"].rsplit("/", 1)[-1])
    url = by_file.get(fname)
    if url is None:
        raise ToolError(f"apt gave no download URL for {name}={version} ({file})",
                        hint="run `gen lock --update` again")
    return AptPackage(name=name, version=version, arch=arch, sha256=record["SHA256"],
                      size=int(record["Size"]), filename=fname, urls=(url,))


class AptResolver:
    """A private apt root for one base image; `update()` once, then `resolve()` per task."""

    def __init__(self, base: BaseFiles, workdir: Path) -> None:
        self.base = base
        key = hashlib.sha256("\n".join((*base.sources, base.arch)).encode()).hexdigest()[:16]
        self.root = (workdir / key).resolve()
        for d in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
                  "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
                  "var/lib/dpkg"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base.status, self.root / "var/lib/dpkg/status")
        (self.root / "etc/apt/sources.list").write_text(
            "".join(self._signed(line) + "\n" for line in base.sources))
        self._updated = False

    @staticmethod
    def _signed(line: str) -> str:
        """Make apt check this source with Debian's archive keyring from the host."""
        rest = line[4:].strip()
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            keep = [o for o in opts.split() if not o.startswith("signed-by=")]
        else:
            keep = []
        keep.append(f"signed-by={KEYRING}")
        return f"deb [{' '.join(keep)}] {rest.strip()}"

    def _apt(self, *args: str, what: str, timeout: float = 600) -> str:
        opts = [
            f"-oDir={self.root}", f"-oDir::State::status={self.root}/var/lib/dpkg/status",
            "-oDir::Etc::trusted=/dev/null/none", f"-oDir::Etc::TrustedParts={self.root}/none",
            f"-oAPT::Architecture={self.base.arch}", f"-oAPT::Architectures::={self.base.arch}",
            "-oAcquire::Check-Valid-Until=false", "-oAcquire::Languages=none",
            "-oAPT::Install-Recommends=false", "-oAPT::Install-Suggests=false",
            "-oDebug::NoLocking=true", "-oAPT::Sandbox::User=root", "-q",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("APT_")}
        env.update({"LC_ALL": "C", "APT_CONFIG": "/dev/null"})
        result = proc.run(["apt-get", *opts, *args], what=what, env=env, timeout=timeout,
                          check=False)
        if result.returncode != 0:
            tail = proc.failure_detail("apt-get", result.stderr, result.stdout, lines=4)
            raise ToolError(f"{what}: apt-get exited {result.returncode}: {tail}",
                            hint="check the package names and that deb.debian.org is reachable")
        return str(result.stdout)

    def update(self) -> None:
        if not self._updated:
            if not KEYRING.is_file():
                raise ToolError(f"Debian archive keyring {KEYRING} is missing",
                                hint="apt-get install debian-archive-keyring")
            self._apt("update", what="download and verify the Debian package indices")
            self._updated = True

    def resolve(self, names: list[str], *, file: str) -> list[AptPackage]:
        """The packages `apt-get install names` would add to the base, with sha256 + URL."""
        self.update()
        if not names:
            return []
        sim = self._apt("install", "-s", *names, what=f"resolve {' '.join(names)} ({file})")
        insts = _INST_RE.findall(sim)
        uris = self._apt("install", "--print-uris", "-y", *names,
                         what=f"list the download URLs ({file})")
        by_file = {}
        for url, _fname, _size in _URI_RE.findall(uris):
            by_file[urllib.parse.unquote(url.rsplit("/", 1)[-1])] = url
        records = self._records(insts)
        pkgs: list[AptPackage] = []
        for name, version, arch in insts:
            pkgs.append(_package(records.get((name, version, arch)), by_file, name, version,
                                 arch, file=file))
        return sorted(pkgs, key=lambda p: (p.name, p.arch))

    def locate(self, exact: Sequence[tuple[str, str, str]], *, file: str) -> list[AptPackage]:
        """sha256, size and pool URL of exact (name, version, arch) packages, from the signed
        indices (`apt-get download --print-uris` names the URL, no dependency resolution)."""
        self.update()
        wanted = [(n, v, self.base.arch if a == "all" else a) for n, v, a in exact]
        uris = self._apt("download", "--print-uris", *(f"{n}:{a}={v}" for n, v, a in wanted),
                         what=f"list the download URLs ({file})")
        by_file = {urllib.parse.unquote(url.rsplit("/", 1)[-1]): url
                   for url, _f, _s in _URI_RE.findall(uris)}
        records = self._records(wanted)
        pkgs: list[AptPackage] = []
        for (name, version, arch), (_, _, qarch) in zip(exact, wanted, strict=True):
            pkgs.append(_package(records.get((name, version, qarch)), by_file, name, version,
                                 arch, file=file))
        return sorted(pkgs, key=lambda p: (p.name, p.arch))

    def _records(self, insts: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str],
                                                                    dict[str, str]]:
        """Index records (Filename, SHA256, Size...) of exact versions, in one apt-cache call."""
        if not insts:
            return {}
        out = proc.run(["apt-cache", f"-oDir={self.root}",
                        f"-oDir::State::status={self.root}/var/lib/dpkg/status",
                        f"-oAPT::Architecture={self.base.arch}", "show", "--no-all-versions",
                        *(f"{n}:{a}={v}" for n, v, a in insts)],
                       what="read the package index records",
                       extra_env={"LC_ALL": "C", "APT_CONFIG": "/dev/null"}).stdout
        records: dict[tuple[str, str, str], dict[str, str]] = {}
        for block in str(out).split("\n\n"):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line and line[0] not in " \t":
                    k, _, v = line.partition(":")
                    fields[k] = v.strip()
            if not all(k in fields for k in ("Package", "Version", "Architecture", "Filename",
                                              "SHA256", "Size")):
                continue
            arch = fields["Architecture"]
            key = (fields["Package"], fields["Version"], arch)
            records.setdefault(key, fields)
            if arch == "all":  # apt-get -s names arch-all packages by the native arch
                records.setdefault((fields["Package"], fields["Version"], self.base.arch), fields)
        return records
