"""gen infra's pure parts and its process handling (real child processes, no daemons)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.cli import main
from generator.core import proc
from generator.core.fsutil import mount_points
from generator.image.infra import PACKAGES, Infra, alive, env_lines, running, stop_pid


def test_env_lines_survive_a_shell_eval(tmp_path: Path) -> None:
    env = {"GEN_INFRA": str(tmp_path / "a dir with 'quotes' and $dollars"),
           "DOCKER_HOST": "unix:///x/docker.sock"}
    script = "\n".join(env_lines(env)) + '\nprintf "%s\\n%s" "$GEN_INFRA" "$DOCKER_HOST"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n") == [env["GEN_INFRA"], env["DOCKER_HOST"]]


def test_state_dir_defaults_to_the_project_and_follows_gen_infra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GEN_INFRA", "GEN_REGISTRY", "GEN_BRIDGE", "GEN_BRIDGE_CIDR"):
        monkeypatch.delenv(var, raising=False)
    infra = Infra(tmp_path)
    assert infra.state == tmp_path / ".gen" / "infra"
    assert infra.registry == "127.0.0.1:5000"
    assert infra.socket == f"unix://{tmp_path}/.gen/infra/docker/docker.sock"
    monkeypatch.setenv("GEN_INFRA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GEN_REGISTRY", "127.0.0.1:5999")
    infra = Infra(tmp_path)
    assert infra.state == tmp_path / "elsewhere"
    assert infra.registry == "127.0.0.1:5999"


def _spawn(tmp_path: Path, script: str) -> tuple[int, Path]:
    pid = proc.spawn(["bash", "-c", script], what="start a test process", log=tmp_path / "log")
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{pid}\n")
    return pid, pid_file


def test_stop_pid_stops_exactly_the_recorded_process(tmp_path: Path) -> None:
    pid, pid_file = _spawn(tmp_path, "sleep 60")
    other, _ = _spawn(tmp_path / "o", "sleep 60")
    try:
        assert alive(pid)
        assert stop_pid(pid_file) == pid
        assert not alive(pid)
        assert not pid_file.exists()
        assert alive(other), "a process not named in the PID file was stopped"
    finally:
        stop_pid(tmp_path / "o" / "x.pid")
    assert not alive(other)


def test_a_pid_file_naming_another_program_is_stale(tmp_path: Path) -> None:
    """After a killed daemon or a restart, the PID in a file may belong to another program
    now: with `owner` (our state dir, which our daemons' command lines name) it is not ours,
    and it is neither reported as running nor stopped."""
    state = tmp_path / "state"
    ours = subprocess.Popen([sys.executable, "-c",
                             "import time; print('ready', flush=True); time.sleep(60)",
                             f"--data-root={state}/root"], stdout=subprocess.PIPE)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # the child says it runs before its PID is used (a child that died says nothing)
        assert ours.stdout is not None and ours.stdout.readline() == b"ready\n"
        pid_file = tmp_path / "d.pid"
        pid_file.write_text(f"{stranger.pid}\n")
        assert running(pid_file) == stranger.pid  # without an owner: any live process
        assert running(pid_file, (str(state),)) is None
        assert stop_pid(pid_file, owner=(str(state),)) is None
        assert alive(stranger.pid) and not pid_file.exists()
        pid_file.write_text(f"{ours.pid}\n")
        assert ours.poll() is None, f"the child exited with {ours.returncode}"
        assert running(pid_file, ("/elsewhere", str(state))) == ours.pid
        assert stop_pid(pid_file, owner=(str(state),), grace=5) == ours.pid
        assert not alive(ours.pid)
    finally:
        for p in (ours, stranger):
            p.kill()
            p.wait()
        if ours.stdout is not None:
            ours.stdout.close()


def test_stop_pid_kills_a_process_that_ignores_term(tmp_path: Path) -> None:
    pid, pid_file = _spawn(tmp_path, "trap '' TERM; echo ready; while :; do sleep 0.1; done")
    deadline = time.monotonic() + 10
    while "ready" not in (tmp_path / "log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    assert stop_pid(pid_file, grace=0.5) == pid
    assert not alive(pid)
    assert time.monotonic() - t0 < 5


def test_stop_pid_with_a_stale_or_missing_file(tmp_path: Path) -> None:
    """A PID file whose process has exited (here: a zombie, so the PID cannot be reused by
    another process meanwhile) is removed without signalling anything."""
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        stale = tmp_path / "stale.pid"
        stale.write_text(f"{child.pid}\n")
        assert stop_pid(stale) is None
        assert not stale.exists()
    finally:
        child.wait()
    assert stop_pid(tmp_path / "missing.pid") is None
    garbage = tmp_path / "garbage.pid"
    garbage.write_text("not a pid\n")
    assert stop_pid(garbage) is None
    assert not alive(None) and not alive(0)


def test_spawned_process_outlives_its_parent_in_its_own_session(tmp_path: Path) -> None:
    """What `up` starts keeps running after gen exits and ignores the terminal's signals."""
    code = ("import sys; from pathlib import Path; from generator.core import proc; "
            "print(proc.spawn(['sleep', '60'], what='t', log=Path(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "log")],
                         capture_output=True, text=True, check=True, timeout=30)
    pid = int(out.stdout)
    pid_file = tmp_path / "s.pid"
    pid_file.write_text(f"{pid}\n")
    try:
        assert alive(pid)
        assert os.getsid(pid) == pid  # a session of its own
    finally:
        assert stop_pid(pid_file) == pid


def test_missing_packages_are_named_from_the_list() -> None:
    missing = Infra.missing_packages()
    assert set(missing) <= set(PACKAGES)


def test_cli_env_as_json_and_as_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GEN_INFRA", raising=False)
    monkeypatch.setenv("GEN_REGISTRY", "127.0.0.1:5998")
    monkeypatch.setattr(Infra, "docker_version", staticmethod(lambda host: None))  # no engine
    assert main(["infra", "env", "--project", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["env"]["GEN_REGISTRY"] == "127.0.0.1:5998"
    assert data["env"]["GEN_INFRA"] == str(tmp_path / ".gen" / "infra")
    assert main(["infra", "env", "--project", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "export GEN_REGISTRY=127.0.0.1:5998"
    assert {ln.split("=")[0] for ln in lines} == {
        "export GEN_REGISTRY", "export DOCKER_HOST", "export GEN_INFRA"}


def test_cli_down_with_nothing_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # GEN_INFRA (exported by scripts/test.sh) would name the suite's own infrastructure
    monkeypatch.delenv("GEN_INFRA", raising=False)
    assert main(["infra", "down", "--project", str(tmp_path)]) == 0
    assert "nothing of ours was running" in capsys.readouterr().out


def test_down_unmounts_what_a_killed_dockerd_left(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A dockerd killed (or a machine restarted) under it leaves its data root bind-mounted
    on itself and overlays below it: `rm -rf` of the project then fails. down (and up)
    unmount them, deepest first, and only below our own state dir."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    monkeypatch.delenv("GEN_INFRA", raising=False)
    root = tmp_path / ".gen" / "infra" / "docker" / "root"
    merged = root / "overlay2" / "abc" / "merged"
    merged.mkdir(parents=True)
    outside = tmp_path / "not-ours"
    outside.mkdir()
    mounted = []
    try:
        for cmd in (["mount", "--bind", str(root), str(root)],
                    ["mount", "-t", "tmpfs", "tmpfs", str(merged)],
                    ["mount", "-t", "tmpfs", "tmpfs", str(merged)],  # stacked on one path
                    ["mount", "-t", "tmpfs", "tmpfs", str(outside)]):
            subprocess.run(cmd, check=True, capture_output=True)
            mounted.append(cmd[-1])
        assert main(["infra", "down", "--project", str(tmp_path)]) == 0
        assert "docker: unmounted 3 mount(s)" in capsys.readouterr().out
        left = [m for m in mount_points() if m.startswith(str(tmp_path) + "/")]
        assert left == [str(outside)]  # not below the docker state dir: not ours to touch
        shutil.rmtree(tmp_path / ".gen")  # what the leftover mounts made fail
    finally:
        for point in reversed(mounted):
            subprocess.run(["umount", point], check=False, capture_output=True)
