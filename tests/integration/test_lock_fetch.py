"""`gen lock` / `gen fetch` against the real registry, Debian's mirror and PyPI."""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
import yaml

from generator.core.cas import Store
from generator.image import registry as reg
from generator.image.oci import Layout
from generator.lock.fetch import fetch_project
from generator.lock.lock import lock_project
from generator.lock.lockset import read_lockset
from tests.helpers import GEN_YAML, TERMINAL_FILES, build_project, terminal_spec
from tests.integration.conftest import run_gen

pytestmark = [pytest.mark.integration, pytest.mark.network]


def _tar_with(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_two_platform_index_resolves_to_digests(registry: str, tools: None,
                                                tmp_path: Path) -> None:
    """tag -> index digest and per-platform manifest digests, re-hashed, not trusted."""
    layout = Layout.create(tmp_path / "oci")
    manifests = []
    for plat in ("linux/amd64", "linux/arm64"):
        tar = tmp_path / f"{plat.replace('/', '-')}.tar"
        tar.write_bytes(_tar_with("etc/arch", plat.encode()))
        layer = layout.add_gzip_layer(tar)
        manifests.append(layout.write_image([layer], {"created": "1970-01-01T00:00:00Z"}, plat))
    index = layout.write_index(manifests)
    layout.tag(index, "multi")
    ref = f"{registry}/gen-test/multi:v1"
    reg.push_layout(layout.root, "multi", ref)
    got = reg.resolve(ref)
    assert got.digest == index.digest
    assert got.platforms == {"linux/amd64": manifests[0].digest,
                             "linux/arm64": manifests[1].digest}

    # gen lock pins both platforms of a two-platform dataset
    config = {**GEN_YAML, "platforms": ["linux/amd64", "linux/arm64"],
              "defaults": {**GEN_YAML.get("defaults", {}), "base_image": ref, "apt": []}}
    project = build_project(tmp_path / "p", {"t": (terminal_spec(environment={"apt": []}),
                                                    TERMINAL_FILES)}, config=config, locks=False)
    result = lock_project(project)
    pins = {(p.ref, p.platform): p for p in read_lockset(project).images.pins}
    assert pins[(ref, "linux/amd64")].manifest_digest == manifests[0].digest
    assert pins[(ref, "linux/arm64")].manifest_digest == manifests[1].digest
    assert pins[(ref, "linux/arm64")].index_digest == index.digest
    assert result.images[ref]["linux/arm64"] == manifests[1].digest


def test_unknown_tag_is_a_clear_error(registry: str, tmp_path: Path) -> None:
    config = {**GEN_YAML, "defaults": {**GEN_YAML.get("defaults", {}),
                                       "base_image": f"{registry}/gen-test/nope:missing"}}
    project = build_project(tmp_path / "p", {"t": (terminal_spec(), TERMINAL_FILES)},
                            config=config, locks=False)
    proc = run_gen("lock", "--project", str(project))
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "gen-test/nope:missing" in line and "fix:" in line


@pytest.fixture(scope="module")
def locked(base_image: str, gen_cas: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with Debian packages and Python requirements, locked once for the module."""
    config = {**GEN_YAML, "defaults": {**GEN_YAML.get("defaults", {}),
                                       "base_image": base_image, "apt": []}}
    spec = terminal_spec(environment={"apt": ["jq", "python3-pip"],
                                      "python": ["six==1.16.0", "attrs>=23"]})
    project = build_project(tmp_path_factory.mktemp("locked") / "p",
                            {"t": (spec, TERMINAL_FILES)}, config=config, locks=False)
    lock_project(project)
    return project


def test_lock_pins_apt_closure_and_python_hashes(locked: Path) -> None:
    locks = read_lockset(locked)
    apt = locks.apt("t")
    assert apt is not None
    names = {p.name for p in apt.packages}
    assert {"jq", "python3-pip", "libjq1"} <= names
    for p in apt.packages:
        assert re.fullmatch(r"[0-9a-f]{64}", p.sha256) and p.size > 0
        assert p.urls[0].startswith("http://deb.debian.org/")
    assert "libc6" not in names  # already in the base: the closure is what the base lacks
    py = locks.python("t")
    assert py is not None
    pins = {p.name.lower(): p for p in py.pins}
    assert pins["six"].version == "1.16.0" and pins["six"].hashes
    assert "attrs" in pins
    text = (locked / "lockfiles/tasks/t/requirements.txt").read_text()
    # nothing of the host's pip configuration (local indexes, find-links) leaks into the lock
    assert "file://" not in text and "--find-links" not in text and "--index-url" not in text
    assert "/opt/" not in text


def test_relock_keeps_bytes_and_check_passes(locked: Path) -> None:
    before = {p: p.read_bytes() for p in (locked / "lockfiles").rglob("*") if p.is_file()}
    result = lock_project(locked)
    assert result.written == []
    after = {p: p.read_bytes() for p in (locked / "lockfiles").rglob("*") if p.is_file()}
    assert before == after
    assert run_gen("lock", "--check", "--project", str(locked)).returncode == 0


def test_fetch_verifies_and_skips_present(locked: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "cas")
    first = fetch_project(locked, store=store)
    kinds = {a["kind"] for a in first.artifacts}
    assert kinds == {"deb", "wheel"}
    wheels = [a for a in first.artifacts if a["kind"] == "wheel"]
    locks = read_lockset(locked).python("t")
    assert locks is not None
    allowed = {h.split(":", 1)[1] for p in locks.pins for h in p.hashes}
    for w in wheels:
        assert w["filename"].endswith(".whl") and w["sha256"] in allowed
    for a in first.artifacts:
        assert store.has(a["sha256"])
    assert not list((tmp_path / "cas" / "sha256").glob(".partial-*"))
    second = fetch_project(locked, store=store)
    assert second.downloaded == [] and len(second.present) == len(first.artifacts)


def _tamper(project: Path, tmp_path: Path, pkg: str, fn: object) -> Path:
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(project, copy)
    lock = copy / "lockfiles/tasks/t/apt.lock"
    lines = lock.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(pkg + "\t"):
            lines[i] = fn(line.split("\t"))  # type: ignore[operator]
    lock.write_text("\n".join(lines) + "\n")
    return copy


def test_fetch_rejects_a_tampered_hash(locked: Path, tmp_path: Path) -> None:
    def bad_sha(cols: list[str]) -> str:
        cols[3] = "0" * 64
        return "\t".join(cols)

    project = _tamper(locked, tmp_path, "jq", bad_sha)
    proc = run_gen("fetch", "--project", str(project), cwd=project)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[0]
    assert "sha256 mismatch" in line and "jq=" in line and "apt.lock" in line
    assert "gen lock --update" in line
    cas = Path(__import__("os").environ["GEN_CAS"])
    assert not (cas / "sha256" / ("0" * 64)).exists()
    assert not list((cas / "sha256").glob(".partial-*"))


def test_fetch_reports_a_version_gone_from_the_mirror(locked: Path, tmp_path: Path) -> None:
    def gone(cols: list[str]) -> str:
        cols[3] = "1" * 64  # not in the store, so it must be downloaded
        cols[6] = cols[6].removesuffix(".deb") + "-gone.deb"
        return "\t".join(cols)

    project = _tamper(locked, tmp_path, "jq", gone)
    proc = run_gen("fetch", "--project", str(project), cwd=project)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[0]
    assert "HTTP 404" in line and "jq=" in line and "gen lock --update" in line


def test_stale_spec_fails_lock_check(locked: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "stale"
    shutil.copytree(locked, copy)
    spec_file = copy / "tasks/t/task.spec.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["environment"]["apt"].append("curl")
    spec_file.write_text(yaml.safe_dump(spec))
    proc = run_gen("lock", "--check", "--project", str(copy))
    assert proc.returncode == 1
    assert "lockfiles/tasks/t/apt.lock: stale" in proc.stdout


def test_fetch_times_out_with_one_clear_line(locked: Path, tmp_path: Path) -> None:
    """A mirror that accepts the connection and never answers: exit 1 after the timeout."""
    import os
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()

    def slow(cols: list[str]) -> str:
        cols[3] = "2" * 64
        cols[6] = f"http://127.0.0.1:{port}/{cols[5]}"
        return "\t".join(cols)

    try:
        project = _tamper(locked, tmp_path, "jq", slow)
        os.environ["GEN_FETCH_TIMEOUT"] = "2"
        proc = run_gen("fetch", "--project", str(project), cwd=project)
    finally:
        os.environ.pop("GEN_FETCH_TIMEOUT", None)
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[0]
    assert "timed out" in line and "jq=" in line and "gen lock --update" in line
