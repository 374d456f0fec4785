"""Putting an exported dataset's images into a Docker engine: each repository@digest pulled by
digest (skipped when present), tagged with the name the consumer expects, and the tag checked to
be that digest's image; and untagging them again."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from generator.core.errors import InputError, ToolError
from generator.validate.runner import DockerRunner

__all__ = [
    "EXPORT_IMAGES_FILE", "load_into_docker", "read_export_images", "remove_from_docker",
]


EXPORT_IMAGES_FILE = "images.json"  # swebench export: harness image name -> built image


def read_export_images(out: Path) -> dict[str, str]:
    """images.json of a swebench export: harness image name -> gen-built image by digest."""
    path = Path(out) / EXPORT_IMAGES_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path} is missing", file=str(path),
                         hint="run `gen export --format swebench` first") from None
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}", file=str(path),
                         hint="export again") from None
    return {str(e["name"]): str(e["ref"]) for e in (data.get("images") or {}).values()}


def load_into_docker(tags: Mapping[str, str] | Iterable[tuple[str, str]]
                     ) -> list[dict[str, str]]:
    """For each (name, repository@digest): pull the image by digest into the Docker engine
    (skipped if present), tag it `name`, and check the tag is that digest's image.

    Returns [{"name", "ref", "id"}] sorted by name. The engine is validate's docker runner (the
    one door gen has to a container engine's images) with the caller's DOCKER_HOST; a failure
    raises ToolError (exit 1) naming the image.
    """
    pairs = sorted(tags.items() if isinstance(tags, Mapping) else tags)
    docker = DockerRunner()
    done: list[dict[str, str]] = []
    for name, ref in pairs:
        docker.ensure_image(ref)  # pulled by digest unless the engine has it
        image_id = docker.image_id(ref)
        docker.tag(ref, name)
        tagged = docker.image_id(name)
        if tagged != image_id:
            raise ToolError(f"{name} is {tagged}, not the image of {ref} ({image_id})",
                            hint="remove the stale tag (docker rmi) and export again")
        done.append({"name": name, "ref": ref, "id": image_id})
    return done


def remove_from_docker(names: Iterable[str]) -> None:
    """Untag images (tests clean up with this); a missing tag is not an error."""
    docker = DockerRunner()
    for name in sorted(set(names)):
        docker.untag(name)
