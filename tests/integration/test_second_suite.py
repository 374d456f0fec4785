"""A second Debian suite: a trixie base (CPython 3.13, glibc 2.41) declared in gen.yaml locks,
builds and runs, and its task's wheels are resolved for trixie's interpreter, not bookworm's.

The whole pipeline runs as a user would: gen lock (resolves the base's closure from Debian's
signed indices, builds it, pins it), gen fetch, gen render, gen build, gen validate (the task's
tests run in the built image and check the interpreter and the compiled wheel they import).
It locks today's trixie, so it does not depend on what the mirror served at any earlier day.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from generator.image.engines.select import available_engines
from generator.lock.lockfiles import parse_python_lock
from generator.lock.lockset import python_input, read_lockset
from tests.helpers import GEN_YAML, build_project, terminal_spec
from tests.integration.conftest import REPO, need, run_gen

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.network]

TESTS = '''\
import subprocess
import sys


def test_the_interpreter_is_trixies():
    assert sys.version_info[:2] == (3, 13)


def test_the_locked_wheel_is_the_cp313_build():
    import yaml
    from yaml import _yaml  # the compiled extension: only a cp313 wheel has one that loads

    assert yaml.__version__ == "6.0.2"
    assert "python3.13" in yaml.__file__ and _yaml.__file__.endswith(".so")


def test_hello():
    out = subprocess.run(["python3", "/app/hello.py"], capture_output=True, text=True)
    assert out.stdout.strip() == "hello"
'''

FILES = {
    "app/hello.py": "print('helo')\n",
    "tests/test_outputs.py": TESTS,
    "solution.sh": ("#!/bin/bash\necho \"print('hello')\" > /app/hello.py\n", 0o755),
}


def _gen(*args: str) -> str:
    got = run_gen(*args)
    assert got.returncode == 0, f"gen {' '.join(args)}:\n{got.stdout}\n{got.stderr}"
    return got.stdout


def test_a_trixie_base_locks_builds_and_runs_python_3_13(
        registry: str, tools: None, gen_cas: Path, tmp_path: Path) -> None:
    engines = available_engines(REPO / ".gen" / "build")
    need(engines.get("buildah") is None, f"engine buildah is not usable: {engines.get('buildah')}")
    ref = f"{registry}/gen-test/debian:trixie"
    config = {**GEN_YAML, "name": "trixie-demo", "registry": f"{registry}/gen-test-trixie",
              "engine": "buildah",
              "bases": {ref: {"suite": "trixie", "variant": "minbase"}},
              "defaults": {**GEN_YAML["defaults"], "base_image": ref}}  # apt: tmux
    spec = terminal_spec(environment={"apt": ["python3", "python3-pytest", "python3-pip"],
                                      "python": ["PyYAML==6.0.2"]})
    project = build_project(tmp_path / "p", {"py313": (spec, FILES)}, config=config,
                            locks=False)
    p = str(project)

    # lock: the base's closure is trixie's, the base is built from it and pinned
    _gen("lock", "--project", p)
    locks = read_lockset(project)
    got = locks.base(ref)
    assert got is not None, "gen lock wrote no base lock for the declared trixie base"
    base_lock, base_sha = got
    base_pkgs = {pkg.name: pkg.version for pkg in base_lock.packages}
    assert base_pkgs["libc6"].startswith("2.41-"), base_pkgs["libc6"]
    assert all("/pool/" in pkg.urls[0] for pkg in base_lock.packages)
    assert any("trixie" in line for line in base_lock.releases), base_lock.releases
    pin = locks.images.get(ref, "linux/amd64")
    assert pin is not None and pin.base_lock == base_sha
    apt = locks.apt("py313")
    assert apt is not None
    assert {pkg.name: pkg.version for pkg in apt.packages}["python3"].startswith("3.13.")

    # the wheels are for trixie's CPython 3.13 and glibc 2.41, and the lock says so
    target = locks.python_target("py313", ref, "linux/amd64")
    assert target == ("3.13", "x86_64-manylinux_2_41")
    req_file = project / "lockfiles/tasks/py313/requirements.txt"
    req = parse_python_lock(req_file.read_text(), str(req_file))
    assert req.input == python_input(["PyYAML==6.0.2"], "linux/amd64", target)
    assert req.input != python_input(["PyYAML==6.0.2"], "linux/amd64")  # not bookworm's
    _gen("lock", "--check", "--project", p)

    fetched = json.loads(_gen("fetch", "--project", p, "--json"))
    wheels = [a["filename"] for a in fetched["artifacts"] if a["kind"] == "wheel"]
    assert len(wheels) == 1, wheels
    assert re.fullmatch(r"PyYAML-6\.0\.2-cp313-cp313-.*manylinux.*x86_64.*\.whl", wheels[0],
                        re.IGNORECASE), wheels

    # render, build and run: the tests in the image check the interpreter and the wheel
    _gen("render", "--project", p)
    _gen("build", "--project", p)
    report = json.loads(_gen("validate", "--project", p, "--runs", "1", "--json"))
    assert report["ok"] is True, json.dumps(report["tasks"], indent=1)[:4000]
    assert report["summary"]["valid"] == 1
