"""The record of built images: `<project>/.gen/build/images.json`.

`gen build` writes it; validate, release and export read it. One entry per task:

    {"schema": 1,
     "images": {"<task id>": {
        "ref": "127.0.0.1:5000/gen-example/<task id>@sha256:<manifest digest>",
        "repository": "127.0.0.1:5000/gen-example/<task id>",
        "digest": "sha256:<normalized per-platform manifest digest>",
        "platform": "linux/amd64",
        "key": "sha256:<input key: everything that went into the image>",
        "engine": "buildah 1.28.2",
        "raw_identical": null | true | false,
        "layout": ".gen/build/oci/<key hex>"   (an OCI layout holding exactly that image)
     }}}

The digest is the image identity gen promises: the OCI manifest digest of the normalized image
for one platform (see BUILD.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.errors import InputError
from generator.core.fsutil import atomic_write

__all__ = ["IMAGES_FILE", "BuiltImage", "load_images", "parse_images", "save_images"]

IMAGES_FILE = state.IMAGES


@dataclass(frozen=True)
class BuiltImage:
    task: str
    ref: str  # repository@digest
    repository: str
    digest: str
    platform: str
    key: str
    engine: str
    layout: str  # relative to the project
    raw_identical: bool | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("task")
        return d


def load_images(project: Path) -> dict[str, BuiltImage]:
    """Task id -> its built image; {} when nothing was built yet."""
    path = Path(project) / IMAGES_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InputError(f"{IMAGES_FILE} is not valid JSON: {exc}", file=str(IMAGES_FILE),
                         hint="run `gen build` again") from exc
    return parse_images(data, where=str(IMAGES_FILE))


def parse_images(data: Any, *, where: str) -> dict[str, BuiltImage]:
    """The records of an images.json document (`where` names it in errors)."""
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, dict):
        raise InputError(f"{where} has no 'images' mapping", file=where,
                         hint="run `gen build` again")
    out: dict[str, BuiltImage] = {}
    for task, entry in sorted(images.items()):
        entry_d: dict[str, Any] = entry if isinstance(entry, dict) else {}
        if not isinstance(entry_d.get("digest"), str):
            raise InputError(f"{where}: the record of task {task} has no digest", file=where,
                             hint="run `gen build` again")
        fields: dict[str, Any] = {k: entry_d.get(k) for k in (
            "ref", "repository", "digest", "platform", "key", "engine", "layout",
            "raw_identical")}
        out[task] = BuiltImage(task=task, **fields)
    return out


def save_images(project: Path, images: dict[str, BuiltImage]) -> None:
    body = {"schema": 1, "images": {t: images[t].to_json() for t in sorted(images)}}
    atomic_write(Path(project) / IMAGES_FILE,
                 (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
