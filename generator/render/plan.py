"""What a render produces: RenderPlan (every output file, relative path -> bytes and mode, rendered
and linted in memory: same inputs, same plan, on any machine) and RenderResult (what a render
wrote, kept, removed, and what it reused from the cache)."""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.render.context import RenderedFile

__all__ = [
    "RenderPlan", "RenderResult",
]


@dataclass
class RenderPlan:
    """Every output file (path relative to the output dir) and the tasks they belong to."""

    files: dict[str, RenderedFile] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


@dataclass
class RenderResult:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    tasks: int = 0
    cached_tasks: int = 0

    def changed(self) -> list[str]:
        return sorted(self.written + self.removed)
