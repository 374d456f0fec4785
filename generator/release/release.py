"""`gen release` / `gen verify-release` as library calls.

A release directory holds:

    manifest.json                  RFC 8785: every dataset file, image digest, lock digest, ...
    manifest.json.sigstore.json    Sigstore bundle v0.3: DSSE(in-toto Statement v1, SLSA v1)
    <name>-<version>.tar           the dataset, deterministic bytes
    {validate,verify,strength}-report.json  the validation / reproducibility / test-strength
                                reports, when present

The directory is flat, so it survives being uploaded as release assets and downloaded again.

It is written to a temp directory beside `--out` and renamed into place. Verification never
reads a trust root from the release: the verifier brings its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.errors import CheckFailed, InputError, UsageError
from generator.core.fsutil import write_new
from generator.image.images import load_images
from generator.release.manifest import (
    BUILD_TYPE,
    MANIFEST_NAME,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Manifest,
    ManifestError,
    archive_name,
    build_archive,
    build_manifest,
    build_statement,
    compare_files,
    hash_archive,
    hash_tree,
    image_subjects,
    parse_manifest,
    sha256_hex,
)
from generator.release.preflight import Preflight, preflight
from generator.release.sign import (
    PAYLOAD_TYPE,
    PrivateKey,
    PublicKey,
    SignerInfo,
    sign_keyless,
    sign_with_key,
    verify_bundle,
)
from generator.spec.config import load_dataset_config

__all__ = [
    "BUNDLE_NAME",
    "REPORTS",
    "ReleaseResult",
    "VerifyResult",
    "artifact_index",
    "check_release",
    "collect_manifest",
    "make_release",
    "verify_release",
]

BUNDLE_NAME = f"{MANIFEST_NAME}.sigstore.json"
# kind -> where the stage leaves its report in the project
REPORTS = {"validate": state.VALIDATE_REPORT, "verify": state.VERIFY_REPORT,
           "strength": state.VALIDATE_STRENGTH}


@dataclass
class ReleaseResult:
    out: Path
    manifest_sha256: str
    files: int
    images: int
    archive: str
    archive_sha256: str
    sign: str
    bundle: Path | None
    signer: SignerInfo | None
    reports: list[str] = field(default_factory=list)
    preflight: Preflight | None = None
    artifact_index: dict[str, str] | None = None  # {repository, digest}, when recorded
    artifact_index_note: str = ""  # why there is none


@dataclass
class VerifyResult:
    release: Path
    signer: SignerInfo | None
    files: int
    images: int
    checked: list[str]


# --------------------------------------------------------------------------------------
# Making a release
# --------------------------------------------------------------------------------------

def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
    except ValueError:
        return False
    return True


def collect_manifest(project: Path, *, artifact_index: Mapping[str, str] | None = None,
                     ) -> tuple[Manifest, bytes, Path]:
    """(manifest, archive bytes, dataset dir); `artifact_index` ({repository, digest} of the
    artifact cache's index, see `artifact_index`) is recorded in the manifest when given."""
    cfg = load_dataset_config(project)
    dataset = project / "dataset"
    if not dataset.is_dir():
        raise InputError("no dataset/ to release", file=str(dataset),
                         hint="run `gen render` first")
    files = hash_tree(dataset)
    if not files:
        raise InputError("dataset/ is empty", file=str(dataset), hint="run `gen render` first")
    lockdir = project / "lockfiles"
    locks = ({f"lockfiles/{rel}": f"sha256:{e.sha256}" for rel, e in hash_tree(lockdir).items()}
             if lockdir.is_dir() else {})
    images: dict[str, dict[str, str]] = {}
    for task, img in sorted(load_images(project).items()):
        if not img.repository or not img.digest:
            raise InputError(f"image of task '{task}' has no repository or digest",
                             file=".gen/build/images.json", hint="run `gen build` again")
        images.setdefault(img.repository, {})[img.platform or cfg.platforms[0]] = img.digest
    reports = {kind: f"sha256:{sha256_hex((project / rel).read_bytes())}"
               for kind, rel in REPORTS.items() if (project / rel).is_file()}
    name = archive_name(cfg.name, cfg.version)
    archive = build_archive(dataset, files, name, cfg.source_date_epoch)
    manifest = build_manifest(
        name=cfg.name, version=cfg.version, platforms=cfg.platforms,
        source_date_epoch=cfg.source_date_epoch, files=files, images=images, lockfiles=locks,
        reports=reports,
        archive={"name": name, "sha256": f"sha256:{sha256_hex(archive)}", "size": len(archive)},
        artifact_index=artifact_index)
    return manifest, archive, dataset


def artifact_index(project: Path) -> tuple[dict[str, str] | None, str]:
    """({repository, digest}, "") of the artifact index `gen cache push` recorded in
    `.gen/cache/artifacts.json`, when the registry holds it; else (None, why not)."""
    from generator.lock.artifact_cache import recorded_index

    return recorded_index(project)


_RELEASE_ENTRIES = {MANIFEST_NAME, BUNDLE_NAME}


def report_name(kind: str) -> str:
    """File name of a report inside the release directory."""
    return f"{kind}-report.json"


def _check_out(out: Path, project: Path, dataset: Path) -> None:
    o, d, p = out.resolve(), dataset.resolve(), project.resolve()
    if _inside(o, d) or _inside(d, o):
        raise UsageError(f"--out {out} overlaps the dataset folder {dataset}",
                         hint="write the release outside dataset/ (Terminal-Bench treats every "
                              "entry there as a task), e.g. --out release")
    if o == p:
        raise UsageError(f"--out {out} is the project directory", hint="use e.g. --out release")
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out {out} exists and is not a directory")
        stray = [e.name for e in out.iterdir()
                 if e.name not in _RELEASE_ENTRIES and not e.name.endswith((".tar",
                                                                             "-report.json"))]
        if stray:
            raise UsageError(f"--out {out} holds files that are not a release "
                             f"({', '.join(sorted(stray)[:3])})",
                             hint="pick an empty or new directory")


def _swap_into_place(tmp: Path, out: Path) -> None:
    old: Path | None = None
    if out.exists():
        old = out.parent / f".{out.name}.gen-old-{os.getpid()}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


SignFn = Callable[[bytes], tuple[bytes, SignerInfo]]


def check_release(project: Path, *, allow: Sequence[str] = ()) -> Preflight:
    """The checks `make_release` makes before signing; CheckFailed (exit 1) on a problem."""
    checked = preflight(project, allow=allow)
    if not checked.ok:
        n = sum(len(p) for p in checked.problems.values())
        lines = checked.lines()
        raise CheckFailed(f"not released, the release would not be one consistent set: "
                          f"{lines[0]}" + (f" (and {n - 1} more)" if n > 1 else "")
                          + "; fix it, or waive the check with --allow", lines)
    return checked


def make_release(project: Path, out: Path, *, sign: str, key: PrivateKey | None = None,
                 trust_config: Any = None, identity_token: str | None = None,
                 env: Mapping[str, str] | None = None,
                 allow: Sequence[str] = ()) -> ReleaseResult:
    """Check the release is consistent (`generator.release.preflight`; `allow` waives checks), hash
    the dataset, write the archive and manifest, sign the Statement, rename into place.

    `sign` is 'keyless' (needs `trust_config` and `identity_token`), 'key' (needs `key`) or
    'none'. Signing happens before anything is visible at `out`; a failed check (exit 1)
    signs and writes nothing.
    """
    checked = check_release(project, allow=allow)
    index, index_note = artifact_index(project)
    manifest, archive, dataset = collect_manifest(project, artifact_index=index)
    _check_out(out, project, dataset)
    mbytes = manifest.to_bytes()
    statement = build_statement(manifest, mbytes, env)
    bundle: bytes | None = None
    signer: SignerInfo | None = None
    if sign == "key":
        if key is None:
            raise UsageError("--sign key needs --key FILE", hint="create one with `gen keygen`")
        bundle, signer = sign_with_key(statement, key)
    elif sign == "keyless":
        if trust_config is None or not identity_token:
            raise UsageError("--sign keyless needs a trust config and an identity token")
        bundle, signer = sign_keyless(statement, trust_config, identity_token)
    elif sign != "none":
        raise UsageError(f"unknown --sign mode '{sign}'", hint="use keyless, key or none")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.gen-tmp-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        assert manifest.archive is not None
        write_new(tmp / manifest.archive["name"], archive)
        write_new(tmp / MANIFEST_NAME, mbytes)
        if bundle is not None:
            write_new(tmp / BUNDLE_NAME, bundle)
        for kind in manifest.reports:
            write_new(tmp / report_name(kind), (project / REPORTS[kind]).read_bytes())
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReleaseResult(
        out=out, manifest_sha256=sha256_hex(mbytes), files=len(manifest.files),
        images=sum(len(p) for p in manifest.images.values()), archive=manifest.archive["name"],
        archive_sha256=manifest.archive["sha256"], sign=sign,
        bundle=out / BUNDLE_NAME if bundle is not None else None, signer=signer,
        reports=sorted(manifest.reports), preflight=checked,
        artifact_index=manifest.artifact_index, artifact_index_note=index_note)


# --------------------------------------------------------------------------------------
# Verifying a release
# --------------------------------------------------------------------------------------

def _fail(summary: str, problems: Sequence[str] = ()) -> CheckFailed:
    return CheckFailed(summary, list(problems) or [summary])


def _check_statement(payload_type: str, payload: bytes, manifest_bytes: bytes) -> dict[str, Any]:
    if payload_type != PAYLOAD_TYPE:
        raise _fail(f"{BUNDLE_NAME}: DSSE payloadType is '{payload_type}', expected "
                    f"'{PAYLOAD_TYPE}'")
    try:
        st = json.loads(payload)
    except ValueError as exc:
        raise _fail(f"{BUNDLE_NAME}: the signed payload is not JSON ({exc})") from exc
    if not isinstance(st, dict) or st.get("_type") != STATEMENT_TYPE:
        raise _fail(f"{BUNDLE_NAME}: the signed payload is not an in-toto Statement v1")
    if st.get("predicateType") != PREDICATE_TYPE:
        raise _fail(f"{BUNDLE_NAME}: predicateType is '{st.get('predicateType')}', expected "
                    f"'{PREDICATE_TYPE}'")
    build_type = ((st.get("predicate") or {}).get("buildDefinition") or {}).get("buildType")
    if build_type != BUILD_TYPE:
        raise _fail(f"{BUNDLE_NAME}: buildType is '{build_type}', expected '{BUILD_TYPE}' "
                    "(not a gen release)")
    subjects = st.get("subject")
    if not isinstance(subjects, list):
        raise _fail(f"{BUNDLE_NAME}: the Statement has no subjects")
    signed = [s for s in subjects if isinstance(s, dict) and s.get("name") == MANIFEST_NAME]
    actual = sha256_hex(manifest_bytes)
    if len(signed) != 1:
        raise _fail(f"{BUNDLE_NAME}: the Statement must have exactly one '{MANIFEST_NAME}' "
                    "subject")
    want = (signed[0].get("digest") or {}).get("sha256")
    if want != actual:
        raise _fail(f"{MANIFEST_NAME}: sha256 {actual[:12]}… is not the signed subject "
                    f"{str(want)[:12]}… (manifest edited or swapped)")
    return st


def _subject_problems(st: dict[str, Any], manifest: Manifest) -> list[str]:
    def key(s: Any) -> tuple[str, str]:
        return (str(s.get("name")), str((s.get("digest") or {}).get("sha256")))

    signed = {key(s) for s in st["subject"]
              if isinstance(s, dict) and s.get("name") != MANIFEST_NAME}
    expected = {key(s) for s in image_subjects(manifest.images)}
    problems = [f"image {n}@sha256:{d[:12]}…: not a signed subject of the Statement"
                for n, d in sorted(expected - signed)]
    problems += [f"Statement subject {n}@sha256:{d[:12]}…: not an image in the manifest"
                 for n, d in sorted(signed - expected)]
    return problems


def _image_problems(manifest: Manifest) -> list[str]:
    from generator.core.errors import ToolError
    from generator.image.registry import resolve

    problems = []
    for repo, plats in sorted(manifest.images.items()):
        for plat, digest in sorted(plats.items()):
            try:
                got = resolve(f"{repo}@{digest}")
            except ToolError as exc:
                problems.append(f"image {repo}@{digest[:19]}…: {exc.message}")
                continue
            if got.platforms and got.platforms.get(plat) != digest and digest != got.digest:
                problems.append(f"image {repo}@{digest[:19]}…: the registry serves it as "
                                f"{sorted(got.platforms.items())}, not {plat}")
    return problems


def verify_release(
    release: Path,
    *,
    keys: Sequence[PublicKey] = (),
    trusted_root_loader: Callable[[], Any] | None = None,
    policy: Any = None,
    dataset: Path | None = None,
    check_images: bool = False,
    allow_unsigned: bool = False,
) -> VerifyResult:
    """Signature and identity, then the Statement, then every byte the manifest names.

    Raises CheckFailed (exit 1) whose summary names what failed and why; UsageError (exit 2)
    for a release directory that does not exist.
    """
    if not release.is_dir():
        raise UsageError(f"release directory {release} does not exist")
    try:
        mbytes = (release / MANIFEST_NAME).read_bytes()
    except FileNotFoundError as exc:
        raise _fail(f"{MANIFEST_NAME}: missing from {release}") from exc
    checked: list[str] = []
    signer: SignerInfo | None = None
    bundle_path = release / BUNDLE_NAME
    if bundle_path.is_file():
        trusted_root = None
        if not keys and policy is not None and trusted_root_loader is not None:
            trusted_root = trusted_root_loader()
        ptype, payload, signer = verify_bundle(
            bundle_path.read_bytes(), where=BUNDLE_NAME, keys=keys, trusted_root=trusted_root,
            policy=policy)
        st = _check_statement(ptype, payload, mbytes)
        checked.append("signature")
    elif allow_unsigned:
        st = None
    else:
        raise _fail(f"{BUNDLE_NAME}: missing: the release is not signed",
                    ["pass --allow-unsigned to check only the files of an unsigned release"])
    try:
        manifest = parse_manifest(mbytes)
    except ManifestError as exc:
        raise _fail(f"{MANIFEST_NAME}: {exc}") from exc

    problems: list[str] = []
    if st is not None:
        problems += _subject_problems(st, manifest)
    if manifest.archive is None:
        problems.append(f"{MANIFEST_NAME}: names no archive")
    else:
        name = manifest.archive["name"]
        try:
            data = (release / name).read_bytes()
        except FileNotFoundError:
            problems.append(f"{name}: missing (listed in the manifest)")
        else:
            if f"sha256:{sha256_hex(data)}" != manifest.archive["sha256"]:
                problems.append(f"{name}: changed (sha256 does not match the manifest)")
            members, bad = hash_archive(data, name)
            problems += bad
            problems += compare_files(manifest.files, members, name)
            checked.append("archive")
    for kind, digest in sorted(manifest.reports.items()):
        rp = release / report_name(kind)
        if not rp.is_file():
            problems.append(f"{rp.name}: missing (listed in the manifest)")
        elif f"sha256:{sha256_hex(rp.read_bytes())}" != digest:
            problems.append(f"{rp.name}: changed (sha256 does not match the manifest)")
    if dataset is not None:
        if not dataset.is_dir():
            raise UsageError(f"--dataset {dataset} is not a directory")
        try:
            tree = hash_tree(dataset)
        except InputError as exc:
            problems.append(exc.one_line())
        else:
            problems += compare_files(manifest.files, tree, dataset.as_posix().rstrip("/"))
            checked.append("dataset")
    if check_images:
        problems += _image_problems(manifest)
        checked.append("images")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _fail(f"{problems[0]}{more}", problems)
    return VerifyResult(release=release, signer=signer, files=len(manifest.files),
                        images=sum(len(p) for p in manifest.images.values()), checked=checked)

