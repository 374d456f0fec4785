"""`gen infra`: the local registry and Docker engine gen's stages use, started and stopped
by PID."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from generator.core.report import Report
from generator.image.infra import PACKAGES, Infra, env_lines


def register(sub: Any) -> None:
    from generator.cli import add_common

    p: argparse.ArgumentParser = sub.add_parser(
        "infra", help="install Debian's container tools; start/stop the local registry and "
        "Docker engine",
        description="The local infrastructure: Debian's container tools, a CNCF distribution "
        "registry on 127.0.0.1 ($GEN_REGISTRY, default 127.0.0.1:5000) and a Docker engine "
        "with its own data root, socket and bridge. A registry or engine that already answers "
        "is reused and never stopped. What `up` starts is stopped by `down`, by PID. State: "
        "$GEN_INFRA, else <project>/.gen/infra.")
    isub = p.add_subparsers(dest="infra_command", metavar="ACTION", required=True)
    actions = {
        "install": "apt-get install the missing Debian packages: " + ", ".join(PACKAGES),
        "up": "install, then start the registry and the Docker engine (idempotent)",
        "env": "print `export` lines for DOCKER_HOST, GEN_REGISTRY and GEN_INFRA "
               "(use: eval \"$(gen infra env)\")",
        "status": "what runs, with PIDs",
        "down": "stop what `up` started (by PID) and remove its bridge",
    }
    for name, text in actions.items():
        a = isub.add_parser(name, help=text, description=text)
        add_common(a)
        if name == "up":
            a.add_argument("--no-docker", action="store_true",
                           help="start the registry only")
            a.add_argument("--no-install", action="store_true",
                           help="do not apt-get install missing packages")
        a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> Report:
    infra = Infra(Path(args.project))
    action = args.infra_command
    report = Report(f"infra {action}")
    report.data = {"state": str(infra.state)}
    if action == "install":
        report.data["installed"] = infra.install(report.say)
    elif action == "up":
        infra.up(report.say, docker=not args.no_docker, install=not args.no_install)
        report.data.update(asdict(infra.status()))
        report.say('next: eval "$(gen infra env)" (exports DOCKER_HOST, GEN_REGISTRY, '
                   'GEN_INFRA for gen and docker)')
    elif action == "down":
        infra.down(report.say)
        if not report.lines:
            report.say("nothing of ours was running")
    elif action == "env":
        env = infra.env()
        report.data["env"] = env
        report.lines.extend(env_lines(env))
    else:
        status = infra.status()
        report.data.update(asdict(status))
        pid = f" (pid {status.registry_pid})" if status.registry_pid else ""
        report.say(f"registry: up at {status.registry}{pid}" if status.registry_up
                   else f"registry: down ({status.registry})")
        pid = f" (pid {status.docker_pid})" if status.docker_pid else ""
        report.say(f"docker: up at {status.docker_host}, engine {status.docker_version}{pid}"
                   if status.docker_up else f"docker: down ({status.docker_host})")
    return report
