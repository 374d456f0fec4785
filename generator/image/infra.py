"""The local infrastructure gen's builds use: Debian's container tools, a CNCF distribution
registry on loopback and a Docker engine (`gen infra install | up | env | status | down`).

Nothing is killed by name: what `up` starts is recorded in PID files under the state
directory, and `down` stops exactly those processes (TERM, then KILL after a grace period).
A registry or Docker engine that already answers is reused as it is and never stopped.

State lives in $GEN_INFRA, else <project>/.gen/infra:
    registry/   config.yml (127.0.0.1 only, no auth, deletes on), data/, registry.pid, .log
    docker/     data root, exec root, docker.sock, docker.pid, dockerd.log, bridge.created
Our dockerd gets its own data root, socket and bridge (gen0, 10.239.0.1/24) and no iptables
rules: builds and tests run with the network off, and another daemon's state is untouched.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from generator.core import proc
from generator.core import state as state_paths
from generator.core.errors import ToolError
from generator.core.fsutil import mount_points
from generator.image.engines.base import DOCKER_CLI

__all__ = ["PACKAGES", "Infra", "Status", "alive", "env_lines", "running", "stop_pid"]

# Debian packages the pipeline's stages call (engines, registry, base image, fetch, export)
PACKAGES = ("docker.io", "buildah", "podman", "skopeo", "docker-registry", "mmdebstrap",
            "uidmap", "netavark", "fuse-overlayfs", "iptables", "iproute2", "git", "curl",
            "ca-certificates")
SYSTEM_SOCKET = "unix:///var/run/docker.sock"


@dataclass
class Status:
    """What runs: addresses, and our PIDs (None for a reused service or a stopped one)."""

    registry: str
    registry_up: bool
    registry_pid: int | None
    docker_host: str
    docker_up: bool
    docker_pid: int | None
    docker_version: str | None = None


def _pid(file: Path) -> int | None:
    try:
        return int(file.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) does not run any more
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def running(file: Path, owner: Sequence[str] = ()) -> int | None:
    """The PID `file` holds when that process runs and, if `owner` is given, one of its
    arguments contains one of those strings (our state dir): a PID file that outlived its
    process (a killed daemon, a restarted machine) may name a number the kernel has since
    given to another program, which is not ours to stop."""
    pid = _pid(file)
    if not alive(pid):
        return None
    assert pid is not None
    if owner:
        args = _cmdline(pid)
        if args is not None and not any(o in a for a in args for o in owner):
            return None
    return pid


def stop_pid(file: Path, *, grace: float = 20.0, owner: Sequence[str] = ()) -> int | None:
    """Stop the process whose PID `file` holds (see `running` for `owner`): TERM, wait up to
    `grace` seconds, then KILL. Removes the file. Returns the PID it stopped (None if nothing
    of ours ran)."""
    pid = running(file, owner)
    if pid is None:
        file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            _reap(pid)
            if not alive(pid):
                break
            time.sleep(0.05)
    _reap(pid)
    file.unlink(missing_ok=True)
    return pid


def _reap(pid: int) -> None:
    """Collect `pid`'s exit status if it is our own child (started by this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


class Infra:
    """The registry and Docker engine of one state directory."""

    def __init__(self, project: Path, *, state: Path | None = None,
                 registry: str | None = None, bridge: str | None = None,
                 bridge_cidr: str | None = None) -> None:
        env = os.environ
        self.state = Path(state or env.get("GEN_INFRA") or project / state_paths.INFRA).absolute()
        self.registry = registry or env.get("GEN_REGISTRY") or "127.0.0.1:5000"
        self.bridge = bridge or env.get("GEN_BRIDGE") or "gen0"
        self.bridge_cidr = bridge_cidr or env.get("GEN_BRIDGE_CIDR") or "10.239.0.1/24"
        self.reg_dir = self.state / "registry"
        self.dk_dir = self.state / "docker"
        self.socket = f"unix://{self.dk_dir / 'docker.sock'}"
        # what the command lines of our daemons contain (their state dirs, as spelled when
        # started or resolved): a PID file's process without it is not ours
        self.dk_owner = (str(self.dk_dir), os.path.realpath(self.dk_dir))
        self.reg_owner = (str(self.reg_dir), os.path.realpath(self.reg_dir))

    # -- probes -----------------------------------------------------------------------

    def registry_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.registry}/v2/", timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError, ValueError):
            return False

    @staticmethod
    def docker_version(host: str) -> str | None:
        """The server version of the engine at `host`, or None if none answers."""
        if not os.path.exists(DOCKER_CLI):
            return None
        result = proc.run([DOCKER_CLI, "version", "--format", "{{.Server.Version}}"],
                          what="ask the Docker engine its version", check=False, timeout=20,
                          extra_env={"DOCKER_HOST": host})
        return result.stdout.strip() or None if result.returncode == 0 else None

    def docker_host(self) -> str:
        """The engine gen uses: ours if it runs, else one that already answers on $DOCKER_HOST
        or the system socket, else ours (to be started)."""
        if running(self.dk_dir / "docker.pid", self.dk_owner) and \
                (self.dk_dir / "docker.sock").exists():
            return self.socket
        env_host = os.environ.get("DOCKER_HOST")
        if env_host and env_host != self.socket and self.docker_version(env_host):
            return env_host
        if self.docker_version(SYSTEM_SOCKET):
            return SYSTEM_SOCKET
        return self.socket

    def status(self) -> Status:
        host = self.docker_host()
        version = self.docker_version(host)
        reg_pid = running(self.reg_dir / "registry.pid", self.reg_owner)
        dk_pid = running(self.dk_dir / "docker.pid", self.dk_owner)
        return Status(registry=self.registry, registry_up=self.registry_ok(),
                      registry_pid=reg_pid,
                      docker_host=host, docker_up=version is not None,
                      docker_pid=dk_pid if host == self.socket else None,
                      docker_version=version)

    def env(self) -> dict[str, str]:
        """The variables gen's commands and tests read, for `eval "$(gen infra env)"`."""
        return {"GEN_REGISTRY": self.registry, "DOCKER_HOST": self.docker_host(),
                "GEN_INFRA": str(self.state)}

    # -- install ----------------------------------------------------------------------

    @staticmethod
    def missing_packages() -> list[str]:
        result = proc.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\\n", *PACKAGES],
                          what="list installed Debian packages", check=False,
                          fix="gen infra needs a Debian or Ubuntu machine (dpkg)")
        ok = {line.split()[0] for line in result.stdout.splitlines()
              if line.endswith(" ok installed")}
        return [p for p in PACKAGES if p not in ok]

    def install(self, say: Callable[[str], None]) -> list[str]:
        """apt-get install the missing packages (as root); the ones it installed."""
        missing = self.missing_packages()
        if not missing:
            say("Debian packages: all present")
            return []
        if os.geteuid() != 0:
            raise ToolError(f"need root to install {' '.join(missing)}",
                            hint="run `gen infra install` as root, or apt-get install them")
        self.state.mkdir(parents=True, exist_ok=True)
        say(f"installing: {' '.join(missing)}")
        t0 = time.monotonic()
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        apt = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        first = proc.run(apt, what="install Debian packages", check=False, extra_env=env)
        if first.returncode != 0:  # the package lists may be stale or absent: refresh once
            proc.run(["apt-get", "update", "-q"], what="refresh apt's package lists",
                     check=False, extra_env=env)
            proc.run(apt, what="install Debian packages", extra_env=env,
                     fix="check that a Debian mirror is reachable (apt-get update)")
        say(f"installed in {time.monotonic() - t0:.0f}s")
        return missing

    # -- registry ---------------------------------------------------------------------

    def registry_up(self, say: Callable[[str], None]) -> None:
        pid_file = self.reg_dir / "registry.pid"
        pid = running(pid_file, self.reg_owner)
        if pid and self.registry_ok():
            say(f"registry: running at http://{self.registry} (pid {pid})")
            return
        if self.registry_ok():
            say(f"registry: one already answers at http://{self.registry} (not ours: reused, "
                "never stopped)")
            return
        data = self.reg_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.reg_dir / "config.yml"
        # the registry's own config: Debian's default listens on every interface with htpasswd
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  fields:\n    service: registry\n"
            f"storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.registry}\n"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n")
        pid = proc.spawn(["docker-registry", "serve", str(config)],
                         what="start the registry", log=self.reg_dir / "registry.log",
                         fix="gen infra install")
        pid_file.write_text(f"{pid}\n")
        if not self._wait(self.registry_ok, 10, pid):
            stop_pid(pid_file, grace=2, owner=self.reg_owner)
            raise ToolError(f"the registry did not come up on {self.registry}: "
                            f"{_tail(self.reg_dir / 'registry.log')}",
                            hint="is the port taken? set GEN_REGISTRY=127.0.0.1:<port>")
        say(f"registry: started at http://{self.registry} (pid {pid}; stop: gen infra down)")

    # -- docker -----------------------------------------------------------------------

    def docker_up(self, say: Callable[[str], None]) -> None:
        host = self.docker_host()
        if host != self.socket:
            say(f"docker: using the engine already at {host}")
            return
        pid_file = self.dk_dir / "docker.pid"
        pid = running(pid_file, self.dk_owner)
        if pid and self.docker_version(host):
            say(f"docker: running at {host} (pid {pid})")
            return
        if os.geteuid() != 0:
            raise ToolError("need root to start dockerd", hint="run `gen infra up` as root, or "
                            "export DOCKER_HOST of a running engine")
        if not os.path.exists(DOCKER_CLI):
            raise ToolError(f"{DOCKER_CLI} is missing", hint="gen infra install")
        if pid:
            raise ToolError(f"our dockerd (pid {pid}) runs but does not answer at {host}",
                            hint="wait for it, or stop it with `gen infra down` and run "
                            "`gen infra up` again")
        failed = self._unmount_leftovers(say)
        if failed:
            raise self._unmount_failed(failed)
        (self.dk_dir / "root").mkdir(parents=True, exist_ok=True)
        (self.dk_dir / "exec").mkdir(parents=True, exist_ok=True)
        self._bridge_up()
        launched = proc.spawn(
            ["dockerd", "--data-root", str(self.dk_dir / "root"),
             "--exec-root", str(self.dk_dir / "exec"), "--host", self.socket,
             "--pidfile", str(pid_file), "--bridge", self.bridge, "--iptables=false",
             "--ip6tables=false", "--ip-masq=false", "--storage-driver", "overlay2",
             "--insecure-registry", self.registry],
            what="start dockerd", log=self.dk_dir / "dockerd.log", fix="gen infra install")
        version = None
        if self._wait(lambda: (self.dk_dir / "docker.sock").exists(), 30, launched):
            self._wait(lambda: self.docker_version(self.socket) is not None, 30, launched)
            version = self.docker_version(self.socket)
        if version is None:
            if not pid_file.exists():
                pid_file.write_text(f"{launched}\n")
            stop_pid(pid_file, grace=5, owner=self.dk_owner)
            raise ToolError(f"dockerd did not start: {_tail(self.dk_dir / 'dockerd.log')}",
                            hint=f"see {self.dk_dir / 'dockerd.log'}")
        say(f"docker: started dockerd {version} at {self.socket} (pid {_pid(pid_file)}; "
            "stop: gen infra down)")

    def _unmount_leftovers(self, say: Callable[[str], None]) -> list[str]:
        """Unmount what a dockerd that did not shut down cleanly (killed, or the machine
        restarted under it) left mounted below our docker state dir: the data root's private
        bind mount, overlay and shm mounts. They would keep `rm -rf` of the project from
        working. Only paths below this state dir, latest mount first (children before their
        parents, and every one of mounts stacked on one path); the caller has made sure our
        dockerd is not running. Returns the mount points that could not be unmounted."""
        prefix = os.path.realpath(self.dk_dir) + "/"  # mountinfo shows real paths
        left = [m for m in reversed(mount_points()) if m.startswith(prefix)]
        failed = []
        for point in left:
            if proc.run(["umount", point], what=f"unmount {point}", check=False).returncode:
                failed.append(point)
        if len(left) > len(failed):
            say(f"docker: unmounted {len(left) - len(failed)} mount(s) a dockerd that did not "
                f"shut down cleanly left below {self.dk_dir}")
        return failed

    def _unmount_failed(self, failed: list[str]) -> ToolError:
        return ToolError(f"cannot unmount {len(failed)} mount(s) a stopped dockerd left below "
                         f"{self.dk_dir}: {', '.join(failed[:3])} (busy: a containerd or shim may "
                         "still hold them)", hint="stop what holds them, unmount them "
                         "(umount PATH), then run gen infra again")

    def _bridge_up(self) -> None:
        shown = proc.run(["ip", "link", "show", self.bridge], what="look for the bridge",
                         check=False)
        if shown.returncode == 0:
            return
        for cmd in (["ip", "link", "add", self.bridge, "type", "bridge"],
                    ["ip", "addr", "add", self.bridge_cidr, "dev", self.bridge],
                    ["ip", "link", "set", self.bridge, "up"]):
            proc.run(cmd, what=f"create the bridge {self.bridge}")
        (self.dk_dir / "bridge.created").write_text(f"{self.bridge}\n")

    # -- up / down --------------------------------------------------------------------

    def up(self, say: Callable[[str], None], *, docker: bool = True,
           install: bool = True) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        if install:
            self.install(say)
        self.registry_up(say)
        if docker:
            self.docker_up(say)

    def down(self, say: Callable[[str], None]) -> None:
        """Stop what `up` started in this state dir, by PID; remove the bridge it made."""
        pid_file = self.dk_dir / "docker.pid"
        if pid_file.exists():
            if self.docker_version(self.socket):
                # containers left behind (validate removes its own; this is a safety net)
                listed = proc.run([DOCKER_CLI, "ps", "-q"], what="list containers",
                                  check=False, extra_env={"DOCKER_HOST": self.socket})
                ids = listed.stdout.split()
                if ids:
                    proc.run([DOCKER_CLI, "rm", "-f", *ids], what="remove containers",
                             check=False, extra_env={"DOCKER_HOST": self.socket})
            stopped = stop_pid(pid_file, owner=self.dk_owner)
            if stopped:
                say(f"dockerd: stopped (pid {stopped})")
        # the mounts a dockerd that did not stop cleanly left (a failure is raised once the
        # bridge and the registry are stopped too)
        failed = [] if running(pid_file, self.dk_owner) else self._unmount_leftovers(say)
        created = self.dk_dir / "bridge.created"
        if created.exists():
            proc.run(["ip", "link", "del", created.read_text().strip()],
                     what="remove the bridge", check=False)
            created.unlink()
        stopped = stop_pid(self.reg_dir / "registry.pid", owner=self.reg_owner)
        if stopped:
            say(f"registry: stopped (pid {stopped})")
        if failed:
            raise self._unmount_failed(failed)

    @staticmethod
    def _wait(ready: Callable[[], bool], seconds: float, pid: int) -> bool:
        """Poll `ready` until it holds, `seconds` pass, or process `pid` exits."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ready():
                return True
            _reap(pid)
            if not alive(pid):
                return ready()
            time.sleep(0.1)
        return ready()


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return "(no log)"
    if not text.strip():
        return "(empty log)"
    return proc.tail(text, lines) or f"(no error lines, only warnings: see {log})"


def env_lines(env: dict[str, str]) -> list[str]:
    """`export NAME=value` lines a POSIX shell can eval."""
    return [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
