"""Test helpers: build a dataset project from dicts, with well-formed lockfiles.

The lockfiles written here are synthetic (made-up digests), which is fine for the pure
render stage: render only checks their shape and that they match the specs.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from generator.lock.lockfiles import (
    AptLock,
    AptPackage,
    ImagePin,
    PythonPin,
    SourceLock,
    format_apt_lock,
    format_image_lock,
    format_python_lock,
    format_source_lock,
)
from generator.lock.lockset import apt_input, python_input, python_target, source_input

BASE_REF = "127.0.0.1:5000/gen/debian:bookworm"


def fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def build_file_tree(root: Path, tree: Mapping[str, Any]) -> None:
    """{"a/b.txt": "text", "c.sh": ("text", 0o755)} -> files under root."""
    for rel, content in tree.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content) if content.startswith("\n") else content)
        path.chmod(mode)


GEN_YAML: dict[str, Any] = {
    "name": "demo",
    "version": "1.0.0",
    "source_date_epoch": 1700000000,
    "platforms": ["linux/amd64"],
    "defaults": {"base_image": BASE_REF, "apt": ["tmux"]},
}


def terminal_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "terminal",
        "instruction": "Fix the script /app/hello.py so it prints 'hello'.\n",
        "difficulty": "easy",
        "tags": ["python"],
        "environment": {"apt": ["python3", "python3-pytest"]},
        "files": [{"src": "app/hello.py", "dest": "/app/hello.py"}],
    }
    spec.update(over)
    return spec


TERMINAL_FILES: dict[str, Any] = {
    "app/hello.py": "print('helo')\n",
    "tests/test_outputs.py": "def test_hello():\n    assert True\n",
    "solution.sh": ("#!/bin/bash\necho \"print('hello')\" > /app/hello.py\n", 0o755),
}

GOLD_PATCH = """diff --git a/calc.py b/calc.py
--- a/calc.py
+++ b/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
"""

TEST_PATCH = """diff --git a/tests/test_calc.py b/tests/test_calc.py
--- a/tests/test_calc.py
+++ b/tests/test_calc.py
@@ -1,2 +1,4 @@
 def test_one():
     assert True
+def test_add():
+    assert __import__('calc').add(1, 2) == 3
"""

SWE_COMMIT = "a" * 40


def swe_spec(**over: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "swe",
        "problem_statement": "add() subtracts instead of adding.\n",
        "repo": "demo/calc",
        "version": "0.1",
        "source": {"git": "sources/calc.bundle"},
        "base_commit": SWE_COMMIT,
        "patch": "gold.patch",
        "test_patch": "test.patch",
        "FAIL_TO_PASS": ["tests/test_calc.py::test_add"],
        "PASS_TO_PASS": ["tests/test_calc.py::test_one"],
        "test_command": "pytest -rA tests/test_calc.py",
        "environment": {"apt": ["git", "python3", "python3-pytest"]},
    }
    spec.update(over)
    return spec


SWE_FILES: dict[str, Any] = {"gold.patch": GOLD_PATCH, "test.patch": TEST_PATCH}


def _apt_packages(names: list[str]) -> list[AptPackage]:
    out = []
    for n in sorted(set(names)):
        out.append(AptPackage(n, "1.0-1", "amd64", hashlib.sha256(n.encode()).hexdigest(), 1000,
                              f"{n}_1.0-1_amd64.deb",
                              (f"http://deb.debian.org/debian/pool/main/{n[0]}/{n}/"
                               f"{n}_1.0-1_amd64.deb",)))
    return out


def write_locks(project: Path, specs: Mapping[str, dict[str, Any]],
                config: Mapping[str, Any] = GEN_YAML) -> None:
    """Write lockfiles that satisfy every spec (synthetic digests)."""
    lock_root = project / "lockfiles"
    defaults = config.get("defaults", {})
    refs = {s.get("environment", {}).get("base_image", defaults.get("base_image"))
            for s in specs.values()}
    platform = config.get("platforms", ["linux/amd64"])[0]
    pins = [ImagePin(r, platform, fake_digest(r + "index"), fake_digest(r + "manifest"))
            for r in sorted(refs) if r]
    lock_root.mkdir(parents=True, exist_ok=True)
    (lock_root / "images.lock").write_text(format_image_lock(pins))
    pinned = {p.ref: p.pinned() for p in pins}
    for task_id, spec in specs.items():
        env = spec.get("environment", {})
        base = env.get("base_image", defaults.get("base_image"))
        d = lock_root / "tasks" / task_id
        d.mkdir(parents=True, exist_ok=True)
        apt = sorted(set(defaults.get("apt", [])) | set(env.get("apt", [])))
        closure = []
        if apt:
            closure = _apt_packages([*apt, "libc-extra"])
            lock = AptLock(apt_input(pinned[base], apt), tuple(apt), tuple(closure),
                           pinned[base])
            (d / "apt.lock").write_text(format_apt_lock(lock))
        reqs = sorted(set(defaults.get("python", [])) | set(env.get("python", [])),
                      key=str.lower)
        if reqs:
            pyp = [PythonPin(r.split("==")[0], r.split("==")[1] if "==" in r else "1.0",
                             (fake_digest(r),)) for r in reqs]
            (d / "requirements.txt").write_text(
                format_python_lock(python_input(reqs, platform,
                                                python_target(platform, closure)), reqs, pyp))
        if spec.get("kind") == "swe":
            src = spec["source"]
            typ = "git" if "git" in src else "archive"
            sl = SourceLock(source_input(typ, src[typ], spec["base_commit"]), typ, src[typ],
                            hashlib.sha256(b"bundle").hexdigest(),
                            spec["base_commit"] if typ == "git" else "",
                            "source.bundle" if typ == "git" else "source.tar.gz")
            (d / "source.lock").write_text(format_source_lock(sl))


def build_project(root: Path, tasks: Mapping[str, tuple[dict[str, Any], Mapping[str, Any]]],
                  *, config: Mapping[str, Any] = GEN_YAML, locks: bool = True) -> Path:
    """tasks: id -> (spec dict, extra files). Returns the project dir."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "gen.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    for task_id, (spec, files) in tasks.items():
        tdir = root / "tasks" / task_id
        tdir.mkdir(parents=True, exist_ok=True)
        (tdir / "task.spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False,
                                                            allow_unicode=True))
        build_file_tree(tdir, files)
    if locks:
        write_locks(root, {t: s for t, (s, _) in tasks.items()}, config)
    return root


def demo_project(root: Path) -> Path:
    return build_project(root, {
        "hello": (terminal_spec(), TERMINAL_FILES),
        "calc-add": (swe_spec(), SWE_FILES),
    })


def fake_toolchain(project: Path, digest: str) -> dict[str, Any]:
    """A toolchain record for a synthetic image (no layers to make it from), cached where
    toolchain_for looks first, so export and validate can seal scripts for it."""
    from generator.image.toolchain import SCHEMA, save_record

    py = "usr/bin/python3.11"
    record: dict[str, Any] = {
        "schema": SCHEMA, "image": digest, "python": "/" + py,
        "site_dirs": ["usr/lib/python3/dist-packages"], "git": None,
        "boot": {py: "0" * 64}, "files": {py: "0" * 64}, "links": {},
        "trees": {"usr/lib/python3.11": {"os.py": "1" * 64}}}
    save_record(project, record)
    return record
