"""`gen base build`: a minimal Debian base image, made reproducibly from Debian's packages.

A base declared in gen.yaml (`bases:`) is built only from its base lock's .debs, offline
(`generator.lock.baselock`): its digest is a function of that lock and source_date_epoch. An
undeclared ref (`--ref`/`--suite`) is built from the live mirror, as below.

mmdebstrap (with SOURCE_DATE_EPOCH) writes a byte-identical rootfs tar for the same mirror
state; gen wraps it into an OCI layout whose bytes are a pure function of that tar (one
deterministic gzip layer, a canonical config with fixed times, an image index over the
per-platform manifest), and pushes it with skopeo `--preserve-digests`. Specs name the tag like
any public base image; `gen lock` pins its digest.

The rootfs tar is kept in the content-addressed store: the mirror moves (point releases,
security updates), so the tar, not the mmdebstrap command line, is the artifact to keep.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generator.core import proc
from generator.core import state as state_paths
from generator.core.cas import default_store
from generator.core.errors import UsageError
from generator.core.fsutil import atomic_write
from generator.image import registry
from generator.image.oci import Layout, platform_of
from generator.lock.baselock import build_rootfs, declared_input
from generator.lock.fetch import base_artifacts, fetch_artifacts
from generator.lock.lockfiles import BaseLock, base_lock_path
from generator.lock.lockset import read_lockset
from generator.spec.config import load_dataset_config

__all__ = ["BaseResult", "BaseSpec", "build_base", "rfc3339"]

DEBIAN_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
ARCH = {"amd64": "amd64", "arm64": "arm64"}


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BaseSpec:
    ref: str  # where it is pushed, e.g. 127.0.0.1:5000/gen/debian:bookworm
    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ()
    platform: str = "linux/amd64"
    epoch: int = 0
    mirror: str = DEBIAN_MIRROR
    security_mirror: str = SECURITY_MIRROR
    closure: str = ""  # BaseLock.closure() of the lock it is built from ("": the live mirror)

    def sources(self) -> list[str]:
        return [f"deb {self.mirror} {self.suite} main",
                f"deb {self.mirror} {self.suite}-updates main",
                f"deb {self.security_mirror} {self.suite}-security main"]

    def key(self) -> str:
        """Hash of everything that decides the rootfs (but not the mirror's state)."""
        data = json.dumps({**asdict(self), "ref": None}, sort_keys=True).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    def created_by(self) -> str:
        inc = f" --include={','.join(self.include)}" if self.include else ""
        if self.closure:
            return (f"gen base build: mmdebstrap --variant={self.variant}{inc} {self.suite} "
                    f"from its base lock (closure {self.closure})")
        return (f"gen base build: mmdebstrap --variant={self.variant}{inc} {self.suite} "
                f"({self.suite}, {self.suite}-updates, {self.suite}-security)")


@dataclass
class BaseResult:
    ref: str
    rootfs_sha256: str
    index_digest: str
    manifest_digest: str
    layout: str
    built: bool  # False when the stored rootfs was reused
    pushed: bool
    seconds: dict[str, float] = field(default_factory=dict)
    base_lock: str = ""  # sha256 of the base lock it was built from ("": the live mirror)

    @property
    def pinned(self) -> str:
        return f"{registry.parse_ref(self.ref).host}/{registry.parse_ref(self.ref).repository}" \
               f"@{self.manifest_digest}"


def run_mmdebstrap(spec: BaseSpec, out_tar: Path) -> None:
    arch = ARCH.get(platform_of(spec.platform)["architecture"])
    if arch is None:
        raise UsageError(f"no base image recipe for platform {spec.platform}",
                         hint="use linux/amd64 or linux/arm64")
    mode = "root" if os.geteuid() == 0 else "unshare"
    cmd = ["mmdebstrap", f"--variant={spec.variant}", f"--mode={mode}", "--format=tar",
           f"--architectures={arch}", "--quiet",
           "--aptopt=Acquire::Check-Valid-Until \"false\"",
           "--dpkgopt=path-exclude=/usr/share/doc/*",
           "--dpkgopt=path-include=/usr/share/doc/*/copyright",
           "--dpkgopt=path-exclude=/usr/share/man/*",
           "--dpkgopt=path-exclude=/usr/share/locale/*"]
    if spec.include:
        cmd.append("--include=" + ",".join(spec.include))
    cmd += [spec.suite, str(out_tar), *spec.sources()]
    proc.run(cmd, what=f"build the {spec.suite} rootfs with mmdebstrap", timeout=1800,
             extra_env={"SOURCE_DATE_EPOCH": str(spec.epoch), "LC_ALL": "C.UTF-8", "TZ": "UTC"},
             fix="check that deb.debian.org is reachable and mmdebstrap is installed "
                 "(`gen infra install`)")


def image_config(spec: BaseSpec) -> dict[str, Any]:
    created = rfc3339(spec.epoch)
    return {
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8"],
            "Cmd": ["bash"],
            "Labels": {"org.opencontainers.image.description":
                       f"Debian {spec.suite} {spec.variant}, built by gen base build"},
        },
        "history": [{"created": created, "created_by": spec.created_by()}],
    }


def write_base_layout(spec: BaseSpec, rootfs_tar: Path, layout_dir: Path, tag: str) -> \
        tuple[str, str]:
    """Wrap a rootfs tar into an OCI layout: returns (index digest, manifest digest)."""
    layout = Layout.create(layout_dir)
    layer, diff_id = layout.add_gzip_layer(rootfs_tar)
    manifest = layout.write_image([(layer, diff_id)], image_config(spec), spec.platform)
    index = layout.write_index([manifest])
    layout.tag(index, tag)
    return index.digest, manifest.digest


def build_base(project: Path, *, ref: str | None = None, suite: str = "bookworm",
               include: tuple[str, ...] = (), rebuild: bool = False, push: bool = True,
               state_dir: Path | None = None) -> BaseResult:
    config = load_dataset_config(project)
    ref = ref or config.defaults.base_image
    if not ref:
        raise UsageError("no base image reference: gen.yaml has no defaults.base_image",
                         hint="pass --ref 127.0.0.1:5000/gen/debian:bookworm")
    parsed = registry.parse_ref(ref)
    decl = config.base(ref)
    lock: BaseLock | None = None
    lock_hex = ""
    if decl is not None:
        have_lock = read_lockset(project).base(ref)
        rel = f"lockfiles/bases/{base_lock_path(project / 'lockfiles', ref).name}"
        if have_lock is None:
            raise UsageError(f"the declared base {ref} has no base lock ({rel})",
                             hint="run `gen lock`")
        lock, lock_hex = have_lock
        if lock.input != declared_input(decl, config.platforms[0]):
            raise UsageError(f"{rel} is stale: gen.yaml's declaration of {ref} changed",
                             hint="run `gen lock`")
        suite, include = decl.suite, decl.include
    tag = parsed.tag or suite
    spec = BaseSpec(ref=ref, suite=suite, include=tuple(sorted(include)),
                    platform=config.platforms[0], epoch=config.source_date_epoch,
                    variant=decl.variant if decl else "minbase",
                    closure=lock.closure() if lock else "",
                    **({"mirror": decl.mirror, "security_mirror": decl.security_mirror}
                       if decl else {}))
    state = state_dir or project / state_paths.BASE
    state.mkdir(parents=True, exist_ok=True)
    record_file = state / f"{spec.key()}.json"
    store = default_store(project)
    times: dict[str, float] = {}

    rootfs_hex = None
    if not rebuild and record_file.is_file():
        rootfs_hex = json.loads(record_file.read_text())["rootfs_sha256"]
        if not store.has(rootfs_hex):
            rootfs_hex = None
    built = rootfs_hex is None
    if built:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=state) as tmp:
            tar = Path(tmp) / "rootfs.tar"
            if lock is not None:
                rel = f"lockfiles/bases/{base_lock_path(project / 'lockfiles', ref).name}"
                fetch_artifacts(project, base_artifacts(config, read_lockset(project), [ref]),
                                store=store, config=config)
                times["fetch"] = round(time.perf_counter() - t0, 2)
                build_rootfs(lock, store, tar, platform=spec.platform, epoch=spec.epoch,
                             include=spec.include, file=rel)
            else:
                run_mmdebstrap(spec, tar)
            rootfs_hex = store.put_file(tar)
        times["mmdebstrap"] = round(time.perf_counter() - t0 - times.get("fetch", 0), 2)
    assert rootfs_hex is not None

    t0 = time.perf_counter()
    layout_dir = state / spec.key()
    tmp_layout = Path(tempfile.mkdtemp(dir=state, prefix=".layout-"))
    try:
        index_digest, manifest_digest = write_base_layout(spec, store.path(rootfs_hex),
                                                          tmp_layout, tag)
        if layout_dir.exists():
            shutil.rmtree(layout_dir)
        os.replace(tmp_layout, layout_dir)
    finally:
        shutil.rmtree(tmp_layout, ignore_errors=True)
    times["oci_layout"] = round(time.perf_counter() - t0, 2)

    pushed = False
    if push:
        t0 = time.perf_counter()
        registry.push_layout(layout_dir, tag, ref)
        got = registry.resolve(ref)
        if got.digest != index_digest or got.platforms.get(spec.platform) != manifest_digest:
            raise UsageError(f"the registry serves {got.digest} for {ref}, not the pushed "
                             f"{index_digest}", hint="check that nothing else pushes that tag")
        pushed = True
        times["push"] = round(time.perf_counter() - t0, 2)

    atomic_write(record_file, json.dumps(
        {"ref": ref, "rootfs_sha256": rootfs_hex, "index_digest": index_digest,
         "manifest_digest": manifest_digest, "spec": asdict(spec)},
        indent=2, sort_keys=True).encode() + b"\n")
    return BaseResult(ref=ref, rootfs_sha256=rootfs_hex, index_digest=index_digest,
                      manifest_digest=manifest_digest, layout=str(layout_dir), built=built,
                      pushed=pushed, seconds=times, base_lock=lock_hex)
