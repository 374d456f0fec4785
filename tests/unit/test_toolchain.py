"""The toolchain record (image/toolchain.py, made from an image's layers) and gen's in-container
grader (templates/_grader.py, reading the filesystem) agree on every digest, and the grader's
check refuses a changed, added or removed entry, a repointed symlink and /etc/ld.so.preload;
seal_script fills exactly the record line; pytest_args accepts plain pytest calls only."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.image.oci import Layout
from generator.image.toolchain import RECORD_LINE, seal_script, toolchain_record
from generator.render.grading import grader_source, pytest_args

PY = "usr/bin/python3.11"


def _grader(record: dict[str, Any]) -> dict[str, Any]:
    """The grader's imports, classes and functions (not its main, not its stdin reading)."""
    tree = ast.parse(grader_source())
    kinds = ast.FunctionDef | ast.ClassDef | ast.Import
    keep: list[ast.stmt] = [n for n in tree.body if isinstance(n, kinds)
                            and getattr(n, "name", "") != "main"]
    ns: dict[str, Any] = {"RECORD": record}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "_grader.py", "exec"), ns)
    return ns


def _fs(root: Path, files: dict[str, bytes], links: dict[str, str]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for rel, target in links.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)


def _image(tmp: Path, root: Path) -> tuple[Layout, Any]:
    """An OCI layout whose one layer is `root` (hard links kept as hard links)."""
    tar_path = tmp / "layer.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                tar.add(full, arcname=full.relative_to(root).as_posix(), recursive=False)
    layout = Layout.create(tmp / "oci")
    desc, diff = layout.add_gzip_layer(tar_path)
    manifest = layout.write_image([(desc, diff)], {"config": {}})
    layout.tag(manifest, "img")
    return layout, manifest


BASE_FILES = {
    PY: b"\x7fELF python",
    "usr/lib/x86_64-linux-gnu/libc.so.6": b"libc",
    "usr/lib/x86_64-linux-gnu/libz.so.1.2.13": b"libz",
    "usr/lib/python3.11/os.py": b"# os\n",
    "usr/lib/python3.11/json/__init__.py": b"# json\n",
    "usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc": b"pyc",
    "usr/lib/python3.11/lib-dynload/_ssl.so": b"ssl",
    "usr/lib/python3/dist-packages/_pytest/main.py": b"# pytest\n",
    "usr/lib/python3/dist-packages/pytest/__init__.py": b"# pytest\n",
    "usr/bin/bash": b"bash", "usr/bin/sha256sum": b"sha", "etc/ld.so.cache": b"cache",
}
BASE_LINKS = {"usr/bin/python3": "python3.11",
              "usr/lib/x86_64-linux-gnu/libz.so.1": "libz.so.1.2.13",
              "usr/lib/python3.11/json/alias.py": "__init__.py"}


def _record(tmp_path: Path, files: dict[str, bytes] = BASE_FILES,
            links: dict[str, str] = BASE_LINKS) -> tuple[dict[str, Any], Path]:
    root = tmp_path / "root"
    _fs(root, files, links)
    os.link(root / "usr/lib/python3.11/os.py", root / "usr/lib/python3.11/os_hard.py")
    layout, manifest = _image(tmp_path, root)
    return toolchain_record(layout, manifest), root


def _check(record: dict[str, Any], root: Path) -> str | None:
    """The grader's check_toolchain run against `root` as '/'; its refusal, or None."""
    ns = _grader(record)
    ns["ROOT"] = f"{root}/"
    try:
        ns["check_toolchain"]()
        return None
    except ns["Refused"] as exc:
        return str(exc)


def test_record_matches_the_grader_on_the_same_tree(tmp_path: Path) -> None:
    record, root = _record(tmp_path)
    assert record["python"] == "/" + PY
    assert record["site_dirs"] == ["usr/lib/python3/dist-packages"]
    # symlinked libraries by the content they resolve to; the link itself by its target
    assert record["boot"]["usr/lib/x86_64-linux-gnu/libz.so.1"] == hashlib.sha256(
        b"libz").hexdigest()
    assert record["links"]["usr/lib/x86_64-linux-gnu/libz.so.1"] == "libz.so.1.2.13"
    assert record["boot"][PY] == hashlib.sha256(BASE_FILES[PY]).hexdigest()
    assert "__pycache__" not in record["trees"]["usr/lib/python3.11"]
    ns = _grader(record)
    for top, children in record["trees"].items():
        assert sorted(children) == sorted(n for n in os.listdir(root / top) if n != "__pycache__")
        for name, digest in children.items():
            assert ns["child_digest"](str(root / top), name) == digest, (top, name)
    assert _check(record, root) is None


def _repoint(link: Path, target: str) -> None:
    link.unlink()
    os.symlink(target, link)


@pytest.mark.parametrize(("change", "refusal"), [
    (lambda r: (r / "usr/lib/python3.11/os.py").write_text("import evil\n"),
     "usr/lib/python3.11/os.py differs"),
    (lambda r: (r / "usr/lib/python3.11/pytest.py").write_text("# fake\n"),
     "usr/lib/python3.11/pytest.py was added"),
    (lambda r: (r / "usr/lib/python3/dist-packages/gen.pth").write_text("import x\n"),
     "dist-packages/gen.pth was added"),
    (lambda r: (r / "usr/lib/python3/dist-packages/_pytest/main.py").unlink(),
     "dist-packages/_pytest differs"),
    (lambda r: shutil.rmtree(r / "usr/lib/python3/dist-packages/pytest"),
     "dist-packages/pytest was removed"),
    (lambda r: _repoint(r / "usr/lib/x86_64-linux-gnu/libz.so.1", "/tmp/evil.so"),
     "libz.so.1"),
    (lambda r: (r / "etc/ld.so.preload").write_text("/tmp/evil.so\n"),
     "/etc/ld.so.preload was added"),
    (lambda r: (r / "usr/bin/sha256sum").write_text("#!/bin/sh\nexit 0\n"),
     "usr/bin/sha256sum differs"),
    # a bytecode cache is not read by the grader (-B, a fresh pycache prefix): not a change
    (lambda r: (r / "usr/lib/python3.11/json/__pycache__/evil.pyc").write_bytes(b"x"), None),
])
def test_the_grader_refuses_a_changed_toolchain(tmp_path: Path, change: Any,
                                                refusal: str | None) -> None:
    record, root = _record(tmp_path)
    change(root)
    got = _check(record, root)
    if refusal is None:
        assert got is None
    else:
        assert got is not None and refusal in got, got


names = st.text(alphabet="abcdefghij_.-", min_size=1, max_size=8).filter(
    lambda n: n not in (".", "..", "__pycache__"))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join),
                            st.binary(max_size=64), min_size=1, max_size=12))
def test_digests_agree_on_any_tree(tmp_path_factory: pytest.TempPathFactory,
                                   tree: dict[str, bytes]) -> None:
    tmp = tmp_path_factory.mktemp("t")
    files = dict(BASE_FILES)
    # drop paths that would need a file and a directory at the same place
    for rel, data in sorted(tree.items()):
        full = f"usr/lib/python3.11/{rel}"
        if any(f.startswith(full + "/") or full.startswith(f + "/") for f in files):
            continue
        files[full] = data
    record, root = _record(tmp, files)
    assert _check(record, root) is None


def test_seal_script_fills_only_the_record_line() -> None:
    record = {"python": "/usr/bin/python3.11", "boot": {PY: "ab" * 32}, "x": "it's"}
    text = f"#!/bin/bash\necho before\n{RECORD_LINE}\necho after\n"
    sealed = seal_script(text, record)
    lines = sealed.split("\n")
    assert lines[:2] == ["#!/bin/bash", "echo before"] and lines[-2:] == ["echo after", ""]
    assert f"GEN_BOOT='{'ab' * 32}  /{PY}'" in lines
    assert "GEN_PYTHON=/usr/bin/python3.11" in lines
    assert RECORD_LINE not in sealed
    # a script without the line (an override that does not grade sealed) is left alone
    assert seal_script("#!/bin/bash\npytest\n", record) == "#!/bin/bash\npytest\n"


@pytest.mark.parametrize(("command", "args"), [
    ('python3 -m pytest -rA -p no:cacheprovider "$TEST_DIR"',
     ["-rA", "-p", "no:cacheprovider", "{TEST_DIR}"]),
    ("pytest -rA test_inflection.py", ["-rA", "test_inflection.py"]),
    ("python -m pytest -rA ${TEST_DIR}/test_x.py", ["-rA", "{TEST_DIR}/test_x.py"]),
    ("pytest -rA tests | tee log", None),
    ("pytest -rA $OTHER", None),
    ("cd /app && pytest -rA", None),
    ("bash run.sh", None),
    ("pytest -rA 'unterminated", None),
    ("pytest -rA tests/test_*.py", None),
])
def test_pytest_args(command: str, args: list[str] | None) -> None:
    assert pytest_args(command) == args
