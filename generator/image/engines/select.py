"""Pick an engine by name: `auto` is the first usable of buildah, buildx, docker."""

from __future__ import annotations

from pathlib import Path

from generator.core.errors import ToolError, UsageError
from generator.image.engines.base import Engine
from generator.image.engines.buildah import Buildah
from generator.image.engines.buildx import Buildx
from generator.image.engines.docker import Docker

__all__ = ["ENGINES", "available_engines", "get_engine"]

ENGINES = ("buildah", "docker", "buildx")


def get_engine(name: str, state: Path) -> Engine:
    """`auto` picks the first available of buildah, buildx, docker."""
    candidates: dict[str, Engine] = {"buildah": Buildah.in_state(state), "docker": Docker(),
                                     "buildx": Buildx()}
    if name == "auto":
        reasons = []
        for n in ("buildah", "buildx", "docker"):
            why = candidates[n].available()
            if why is None:
                return candidates[n]
            reasons.append(why)
        raise ToolError("no container engine is usable: " + "; ".join(reasons),
                        hint="gen infra up")
    if name not in candidates:
        raise UsageError(f"unknown engine '{name}'",
                         hint=f"use one of: auto, {', '.join(ENGINES)}")
    engine = candidates[name]
    why = engine.available()
    if why is not None:
        raise ToolError(f"engine {name} is not usable: {why}")
    return engine


def available_engines(state: Path) -> dict[str, str | None]:
    """name -> None if usable, else the reason it is not."""
    out: dict[str, str | None] = {}
    engines: list[tuple[str, Engine]] = [("buildah", Buildah.in_state(state)),
                                         ("docker", Docker()), ("buildx", Buildx())]
    for n, e in engines:
        out[n] = e.available()
    return out
