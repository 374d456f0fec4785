"""Fixtures for `gen release` / `gen verify-release` tests.

`project` is a small synthetic dataset project (gen.yaml, dataset/, lockfiles/, two built
images in .gen/build/images.json, a validation report). `local_sigstore` is the Sigstore
double of sigstore_double.py on 127.0.0.1; `no_network` makes every socket connect fail, so
verification is shown to need no network at all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tests.release.release_support import block_network, make_project
from tests.release.sigstore_double import LocalSigstore


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def local_sigstore() -> Iterator[LocalSigstore]:
    svc = LocalSigstore().start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="session")
def trust_config(local_sigstore: LocalSigstore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trust") / "trust_config.json"
    path.write_text(json.dumps(local_sigstore.trust_config(), indent=2))
    return path




@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    block_network(monkeypatch)


@pytest.fixture(scope="session")
def foreign_trust_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trust config of a second, unrelated instance (other CA, CT and Rekor keys)."""
    other = LocalSigstore().start()
    try:
        path = tmp_path_factory.mktemp("foreign") / "trust_config.json"
        path.write_text(json.dumps(other.trust_config()))
    finally:
        other.stop()
    return path
