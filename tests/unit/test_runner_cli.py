"""validate's CLI runner through core/proc, against a fake engine program (a shell script that
records its command lines and plays `docker`): the argv it gets, the tar it reads on stdin,
podman's private TMPDIR, a step killed at its limit, and a hanging engine as a ToolError. The
real engines: tests/validate/test_validate_engines.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from generator.core.errors import ToolError
from generator.validate.runner import ContainerSpec, DockerRunner, PodmanRunner, make_tar

FAKE = r"""#!/bin/bash
log="$(dirname "$0")/calls"
printf '%s\037' "$@" >> "$log"; printf '\036' >> "$log"
case "$1" in
  version) [ -e "$(dirname "$0")/hang" ] && sleep 30; echo 24.0.7 ;;
  run) echo 'some warning on stdout'; echo cid0123456789abcdef ;;
  cp) cat > "$(dirname "$0")/copied.tar"; echo "${TMPDIR:-none}" > "$(dirname "$0")/tmpdir" ;;
  exec) shift 2; "$@" ;;
  image) exit 1 ;;
  pull) echo 'Error: pull access denied' >&2; exit 1 ;;
  ps) printf 'c1\nc2\n' ;;
  *) ;;
esac
"""


@pytest.fixture
def engine(tmp_path: Path) -> Path:
    script = tmp_path / "docker"
    script.write_text(FAKE)
    script.chmod(0o755)
    return script


def _calls(engine: Path) -> list[list[str]]:
    calls = (engine.parent / "calls").read_text().split("\036")[:-1]
    return [c.split("\037")[:-1] for c in calls]


SPEC = ContainerSpec(env={"A": "1"}, memory_mb=512, cpus=1.0, lifetime_sec=600,
                     labels={"gen.run": "x"})


def test_a_container_runs_copies_and_is_removed(engine: Path) -> None:
    runner = DockerRunner(str(engine))
    assert runner.available() is None and runner.version() == "docker 24.0.7"
    c = runner.start("r.io/img@sha256:11", SPEC)
    assert c.id == "cid0123456789abcdef"
    files = {"/tests/run.sh": (b"#!/bin/sh\n\xff\n", 0o755)}
    c.put_files(files)
    assert (engine.parent / "copied.tar").read_bytes() == make_tar(files)
    assert (engine.parent / "tmpdir").read_text() == "none\n"  # docker: gen's own TMPDIR
    with tarfile.open(fileobj=io.BytesIO(make_tar(files))) as tar:
        assert tar.getnames() == ["tests", "tests/run.sh"]
    done = c.exec("echo out; echo err >&2; exit 3", timeout=30)
    assert (done.exit_code, done.output, done.timed_out) == (3, "out\nerr\n", False)
    killed = c.exec("echo begun; sleep 20", timeout=1)
    assert killed.timed_out and killed.exit_code is None and killed.output == "begun\n"
    c.remove()
    c.remove()  # once only
    assert runner.containers("gen.run=x") == ["c1", "c2"]
    calls = _calls(engine)
    assert calls[2] == [
        "run", "-d", "--rm", "--name", calls[2][4], "--network", "none", "--hostname",
        "gen-validate", "--memory", "512m", "--memory-swap", "512m", "--cpus", "1",
        "--pids-limit", "4096", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
        "--label", "gen.run=x", "-e", "A=1", "--entrypoint", "sleep", "r.io/img@sha256:11",
        "600"]
    assert calls[3] == ["cp", "-", "cid0123456789abcdef:/"]
    assert calls[4] == ["exec", "cid0123456789abcdef", "bash", "-c",
                        "{ echo out; echo err >&2; exit 3\n} 2>&1"]
    assert calls[6:] == [["kill", "cid0123456789abcdef"], ["rm", "-f", "cid0123456789abcdef"],
                         ["ps", "-a", "-q", "--no-trunc", "--filter", "label=gen.run=x"]]


def test_podman_copies_through_a_private_tmpdir(engine: Path) -> None:
    runner = PodmanRunner(str(engine))
    c = runner.start("localhost/img:1", SPEC)
    c.put_files({"/a": (b"x", 0o644)})
    spool = (engine.parent / "tmpdir").read_text().strip()
    assert "gen-cp-" in spool and not Path(spool).exists()  # deleted right after
    c.remove()


def test_a_missing_image_names_the_pull_and_the_layout(engine: Path, tmp_path: Path) -> None:
    runner = DockerRunner(str(engine))
    with pytest.raises(ToolError, match=r"cannot get image r\.io/img@sha256:11 into docker: "
                       r"Error: pull access denied; and no OCI layout to load it from \(None\)"):
        runner.ensure_image("r.io/img@sha256:11")
    assert [c[:2] for c in _calls(engine)] == [["image", "inspect"], ["image", "inspect"],
                                               ["pull", "-q"]]


def test_a_hanging_engine_is_a_tool_error(engine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.core import proc

    real = proc.run

    def quick(*args: object, **kw: object) -> object:
        kw["timeout"] = 0.5
        return real(*args, **kw)  # type: ignore[arg-type]

    (engine.parent / "hang").touch()
    monkeypatch.setattr(proc, "run", quick)
    with pytest.raises(ToolError, match=r"cannot reach the Docker engine: docker timed out after"):
        DockerRunner(str(engine)).available()
