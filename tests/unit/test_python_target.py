"""The Python target comes from the image's own packages: CPython X.Y of its `python3`, the
manylinux glibc of its `libc6` (base lock + task apt.lock), not a hard-coded 3.11 / 2.36."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.lock.fetch import wheel_tags
from generator.lock.lockfiles import AptPackage
from generator.lock.lockset import PYTHON_TARGETS, python_input, python_target


def _pkg(name: str, version: str) -> AptPackage:
    return AptPackage(name, version, "amd64", "0" * 64, 1, f"{name}.deb", ("http://x/a.deb",))


def test_suites_give_their_own_interpreter_and_glibc() -> None:
    bookworm = [_pkg("libc6", "2.36-9+deb12u13"), _pkg("python3", "3.11.2-1+b1")]
    trixie = [_pkg("libc6", "2.41-12"), _pkg("python3", "3.13.5-1")]
    bullseye = [_pkg("libc6", "2.31-13+deb11u11"), _pkg("python3", "3.9.2-3")]
    assert python_target("linux/amd64", bookworm) == ("3.11", "x86_64-manylinux_2_36")
    assert python_target("linux/amd64", trixie) == ("3.13", "x86_64-manylinux_2_41")
    assert python_target("linux/arm64", bullseye) == ("3.9", "aarch64-manylinux_2_31")
    # bookworm's target is the old constant: its locks' inputs are unchanged
    assert python_input(["six"], "linux/amd64", python_target("linux/amd64", bookworm)) == \
        python_input(["six"], "linux/amd64")


def test_what_the_packages_lack_falls_back() -> None:
    assert python_target("linux/amd64", []) == PYTHON_TARGETS["linux/amd64"]
    only_libc = python_target("linux/amd64", [_pkg("libc6", "2.41-12")])
    assert only_libc == ("3.11", "x86_64-manylinux_2_41")
    epoch = python_target("linux/amd64", [_pkg("python3", "1:3.12.1-1")])
    assert epoch[0] == "3.12"


@settings(max_examples=50, deadline=None)
@given(st.integers(8, 14), st.integers(17, 45))
def test_wheel_tags_follow_the_target(minor: int, glibc: int) -> None:
    tags = wheel_tags("linux/amd64", (f"3.{minor}", f"x86_64-manylinux_2_{glibc}"))
    assert tags[0] == f"cp3{minor}-cp3{minor}-manylinux_2_{glibc}_x86_64"
    assert f"cp3{minor}-abi3-manylinux_2_17_x86_64" in tags
    assert "py3-none-any" in tags
    assert not any(t.startswith(f"cp3{minor + 1}-") for t in tags)
    assert not any(f"manylinux_2_{glibc + 1}_" in t for t in tags)


def test_a_task_target_reads_base_and_task_locks() -> None:
    # the python3 of the task's apt.lock wins over nothing in the base; libc6 from the base
    got = python_target("linux/amd64", [_pkg("libc6", "2.41-12"), _pkg("python3", "3.13.5-1")])
    assert got == ("3.13", "x86_64-manylinux_2_41")


def test_uv_is_asked_for_a_platform_it_accepts(tmp_path: Path) -> None:
    """trixie's glibc 2.41 is newer than uv's newest manylinux name: the resolver gets 2_40
    (what it picks runs on 2.41), and uv itself accepts every value gen passes it."""
    import subprocess

    from generator.lock.lock import _uv, uv_platform

    assert uv_platform("x86_64-manylinux_2_41") == "x86_64-manylinux_2_40"
    assert uv_platform("aarch64-manylinux_2_36") == "aarch64-manylinux_2_36"
    assert uv_platform("x86_64-manylinux_2_31") == "x86_64-manylinux_2_31"
    empty = tmp_path / "requirements.in"
    empty.write_text("")
    for libc in ("2.31-13", "2.36-9", "2.41-12", "2.42-1"):
        plat = python_target("linux/amd64", [_pkg("libc6", libc)])[1]
        got = subprocess.run([_uv(), "pip", "compile", "--no-config", "--offline", "--quiet",
                              "--python-version", "3.13", "--python-platform",
                              uv_platform(plat), str(empty)],
                             capture_output=True, text=True, timeout=60)
        assert got.returncode == 0, (plat, got.stderr)
