"""Command reports: one object per command run, printed as text or as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

__all__ = ["Report"]


@dataclass
class Report:
    """What a command did: `data` is the machine-readable part, `lines` the human one."""

    command: str
    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    exit_code: int = 0

    def say(self, line: str) -> None:
        self.lines.append(line)

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "exit_code": self.exit_code, **self.data}

    def emit(self, out: TextIO, *, as_json: bool) -> None:
        if as_json:
            out.write(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        else:
            for line in self.lines:
                out.write(line + "\n")
