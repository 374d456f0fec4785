"""Engine warnings (buildah's CNI `level=warning` lines, `WARN[0000]`, docker's `WARNING:`) never
make it into an error message: the message carries the engine's error lines, the warnings go
to `-v`. And a locked base that is not in the registry is one line before any build."""

from __future__ import annotations

import io
import logging
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.cli import _verbose_log, main
from generator.core import proc
from generator.core.errors import ToolError
from generator.image import build
from generator.image.engines.base import BuildRequest
from generator.image.engines.base import run_engine as engine_run
from generator.render.pipeline import render
from tests.helpers import demo_project

CNI = ('time="2026-12-06T03:36:29Z" level=warning msg="Error validating CNI config file '
       '/etc/cni/net.d/87-podman-bridge.conflist: [failed to find plugin \\"bridge\\" in path '
       '[/usr/local/libexec/cni /usr/libexec/cni]]"')
ERROR = ("Error: creating build container: initializing source docker://127.0.0.1:5000/gen/"
         "debian@sha256:2d71: reading manifest sha256:2d71 in 127.0.0.1:5000/gen/debian: "
         "manifest unknown: manifest unknown")

_text = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40)
_word = st.from_regex(r"[A-Za-z0-9_./:-]{1,12}", fullmatch=True)

# warnings as the engines print them, with varying time stamps and messages
warning_lines = st.one_of(
    st.builds(lambda t, lvl, m: f'time="{t}" level={lvl} msg="{m}"',
              _word, st.sampled_from(["warning", "warn", "info", "debug"]), _text),
    st.builds(lambda lvl, lvl_n, m: f"{lvl}[{lvl_n:04d}] {m}",
              st.sampled_from(["WARN", "INFO", "DEBU"]), st.integers(0, 9999), _text),
    st.builds(lambda lvl, m: f"level={lvl} msg={m}", st.sampled_from(["warning", "info"]),
              _word),
    st.builds(lambda m: f"WARNING: {m}", _text),
    st.builds(lambda pad, line: pad + line, st.sampled_from(["", " ", "  "]), st.just(CNI)),
)
# error lines: anything else, including logrus lines of level error or fatal
error_lines = st.one_of(
    _text.map(lambda t: "Error: " + t),
    st.builds(lambda t, m: f'time="{t}" level=error msg="{m}"', _word, _text),
    st.builds(lambda m: f"level=fatal msg={m}", _word),
    _text,
).filter(lambda ln: bool(ln.strip()) and not proc.is_warning(ln))


@given(st.lists(st.tuples(st.booleans(), warning_lines, error_lines), max_size=12),
       st.sampled_from(["\n", "\r\n"]))
def test_warnings_are_split_from_the_error_lines(lines: list[tuple[bool, str, str]],
                                                 newline: str) -> None:
    out: list[str] = []
    want_kept: list[str] = []
    want_warned: list[str] = []
    for is_warn, warn, err in lines:
        out.append(warn if is_warn else err)
        (want_warned if is_warn else want_kept).append((warn if is_warn else err).rstrip())
    text = newline.join(out) + newline
    kept, warned = proc.split_warnings(text)
    assert kept == want_kept
    assert warned == want_warned
    assert proc.split_warnings(text.encode()) == (kept, warned)
    message = proc.tail(text)
    assert "level=warning" not in message and "WARN[" not in message
    assert "WARNING:" not in message
    if want_kept:
        assert message.endswith(want_kept[-1].strip())
    else:
        assert message == ""


@given(st.lists(warning_lines, min_size=1, max_size=6))
def test_only_warnings_is_no_error_message(warnings: list[str]) -> None:
    detail = proc.failure_detail("buildah", "\n".join(warnings))
    assert detail == "no error message, only warnings (shown with -v)"


def test_the_engine_error_line_is_the_message(tmp_path: Path) -> None:
    """engines._run and proc.run: the error lines of a failing program, not its warnings."""
    script = tmp_path / "engine.sh"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{CNI}\nWARN[0000] something\n{ERROR}\n"
                      f"{CNI}\nEOF\nexit 125\n")
    script.chmod(0o755)
    req = BuildRequest(context=tmp_path, out_layout=tmp_path / "out", ref_name="image",
                       epoch=0)
    with pytest.raises(ToolError) as got:
        engine_run([str(script)], what="build with buildah", req=req)
    line = got.value.one_line()
    assert ERROR in line and "exited 125" in line
    assert "level=warning" not in line and "WARN" not in line and "CNI" not in line
    with pytest.raises(ToolError) as got:
        proc.run([str(script)], what="push the image")
    line = got.value.one_line()
    assert ERROR in line and "level=warning" not in line and "WARN" not in line


def test_warnings_are_shown_with_verbose_only(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "engine.sh"
    script.write_text(f"#!/bin/sh\necho '{CNI}' >&2\necho ok\n")
    script.chmod(0o755)
    proc.run([str(script)], what="list images")
    assert capsys.readouterr().err == ""
    with _verbose_log(True):
        proc.run([str(script)], what="list images")
    err = capsys.readouterr().err
    assert err.startswith("gen: engine.sh: time=") and "level=warning" in err
    assert logging.getLogger("gen").handlers == []  # removed again after the command


def test_verbose_log_stream_is_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    with _verbose_log(True):
        proc.log_warnings("buildah", f"{CNI}\n{ERROR}\n")
    assert buf.getvalue().count("\n") == 1 and "CNI" in buf.getvalue()


@pytest.mark.parametrize(("dockerfile", "refs"), [
    ("FROM r.io/a@sha256:11\nRUN x\n", ["r.io/a@sha256:11"]),
    ("# c\nFROM --platform=linux/amd64 r.io/a@sha256:11 AS build\nfrom r.io/b@sha256:22\n"
     "FROM build\nFROM r.io/c:tag\nFROM r.io/a@sha256:11\n", ["r.io/a@sha256:11",
                                                              "r.io/b@sha256:22"]),
    ("RUN echo FROM r.io/a@sha256:11\n", []),
])
def test_base_refs(tmp_path: Path, dockerfile: str, refs: list[str]) -> None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    assert build.base_refs(tmp_path / "Dockerfile") == refs


class _FakeEngine:
    name = "buildah"

    def version(self) -> str:
        return "buildah 0.0"

    def build(self, req: BuildRequest) -> None:  # pragma: no cover - never reached
        raise AssertionError("built although the base is missing")


def test_missing_base_is_one_line_before_any_build(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = demo_project(tmp_path / "p")
    render(project)
    asked: list[str] = []

    def find_manifest(ref: str) -> None:
        asked.append(ref)
        return None

    monkeypatch.setattr(build, "_BASES_PRESENT", set())
    monkeypatch.setattr("generator.image.registry.find_manifest", find_manifest)
    monkeypatch.setattr(build, "get_engine", lambda name, state: _FakeEngine())
    code = main(["build", "--project", str(project), "--no-push"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1, err
    pinned = re.search(r"FROM (\S+)", (project / "dataset" / "hello" / "Dockerfile").read_text())
    assert pinned is not None
    assert err == (f"gen build: error: the locked base {pinned.group(1)} is not in the registry "
                   "(fix: gen base build)\n")
    assert set(asked) == {pinned.group(1)}


def test_run_sets_the_umask_in_the_child_only(tmp_path: Path) -> None:
    """proc.run(umask=...) (the verify builds' 022/077): the child has it, gen keeps its own."""
    import os

    before = os.umask(0o022)
    os.umask(before)
    got = proc.run(["sh", "-c", "umask"], what="read the umask", umask=0o077).stdout
    assert got.strip() == "0077"
    assert proc.run(["sh", "-c", "umask"], what="read the umask").stdout.strip() \
        == f"{before:04o}"
    now = os.umask(before)
    assert now == before


def test_engine_steps_get_the_request_umask_env_and_timeout(tmp_path: Path) -> None:
    req = BuildRequest(context=tmp_path, out_layout=tmp_path / "out", ref_name="image",
                       epoch=0, umask=0o077, env={"TZ": "Pacific/Kiritimati"}, timeout=5)
    out = engine_run(["sh", "-c", 'umask; echo "$TZ $EXTRA"'], what="build", req=req,
                     extra={"EXTRA": "x"})
    assert out.split("\n")[:2] == ["0077", "Pacific/Kiritimati x"]
    slow = BuildRequest(context=tmp_path, out_layout=tmp_path / "out", ref_name="image",
                        epoch=0, timeout=0.2)
    with pytest.raises(ToolError) as got:
        engine_run(["sleep", "5"], what="build with buildah", req=slow)
    assert got.value.one_line() == ("cannot build with buildah: sleep timed out after 0s (fix: "
                                    "raise the build timeout or look for a hanging RUN step)")


def test_a_timeout_is_a_tool_error_keeping_the_output(tmp_path: Path) -> None:
    with pytest.raises(proc.TimedOut) as got:
        proc.run(["sh", "-c", "echo started; sleep 5"], what="wait", timeout=0.5, text=False)
    exc = got.value
    assert isinstance(exc, ToolError) and exc.program == "sh" and exc.timeout == 0.5
    assert exc.one_line() == "cannot wait: sh timed out after 0s"
    assert exc.stdout == b"started\n"
    assert exc.to_json()["error"] == "ToolError"


def test_run_pipes_bytes_in_and_out(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    r = proc.run(["cat"], what="copy bytes", input=data)
    assert r.stdout == data and r.returncode == 0
    r = proc.run(["sh", "-c", "printf '\\377'; exit 3"], what="fail", check=False, text=False)
    assert (r.returncode, r.stdout) == (3, b"\xff")
    with pytest.raises(ToolError, match="'no-such-program-gen' is not installed"):
        proc.run(["no-such-program-gen"], what="run nothing")
    with pytest.raises(ToolError, match="not found"):
        proc.run([str(tmp_path / "missing")], what="run nothing")
    r = proc.run(["sh", "-c", "pwd; echo $X"], what="look around", cwd=tmp_path,
                 env={"PATH": "/usr/bin:/bin", "X": "1"})
    assert r.stdout.split() == [str(tmp_path), "1"]
