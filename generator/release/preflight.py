"""What `gen release` checks before it signs anything: that the release is one consistent set.

A signature says "these files and these images, validated and reproducible". That is only
true when every piece was made from the same inputs, so before signing:

- `lock`: `lockfiles/` matches the specs (`gen lock --check`, offline);
- `render`: `dataset/` is byte for byte what the specs, templates and locks render
  (`gen render --check`, in memory);
- `images`: every task has an image in `.gen/build/images.json`, built from the current
  inputs: its input key, recomputed with the engine it records, is the key it was built under;
- `validate`: `.gen/validate/report.json` passed, covers every task, and validated exactly
  the images being released (same digests);
- `verify`: `.gen/verify/report.json` passed (every task byte-identical, no recorded image
  differing), covers every task, and its digest is the released image's;
- `strength` (only with gen.yaml `strength:`): `.gen/validate/strength.json` measured every
  task, on the released image, and each met the thresholds (no survivors above the gate).

Each check can be waived (`gen release --allow unverified`, `stale-locks`, `stale-dataset`,
`stale-images`, `unvalidated`, `weak-tests`, or `all`), and the release report says which
were waived.
Nothing here touches the network or an engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import state
from generator.core.cas import default_store
from generator.core.errors import GenError, UsageError
from generator.image.build import cache_record_path, task_key, vendored_files
from generator.image.images import load_images
from generator.lock.fetch import artifact_names
from generator.lock.lock import stale_locks
from generator.lock.lockfiles import DIGEST_RE
from generator.lock.lockset import read_lockset
from generator.render.pipeline import render
from generator.spec.config import load_dataset_config
from generator.spec.project import load_project

__all__ = ["CHECKS", "Preflight", "preflight"]

# check name -> the word `--allow` takes to waive it
CHECKS = {"lock": "stale-locks", "render": "stale-dataset", "images": "stale-images",
          "validate": "unvalidated", "verify": "unverified", "strength": "weak-tests"}
SHOWN = 5  # problems listed per check (the JSON report has them all)


@dataclass
class Preflight:
    problems: dict[str, list[str]] = field(default_factory=dict)  # check -> problems
    waived: list[str] = field(default_factory=list)  # checks skipped by --allow
    notes: list[str] = field(default_factory=list)  # what a waiver leaves unproven
    inactive: list[str] = field(default_factory=list)  # checks the project does not ask for

    @property
    def ok(self) -> bool:
        return not any(self.problems.values())

    def lines(self) -> list[str]:
        out = []
        for check, probs in self.problems.items():
            for p in probs[:SHOWN]:
                out.append(f"{check}: {p}")
            if len(probs) > SHOWN:
                out.append(f"{check}: ... and {len(probs) - SHOWN} more")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": self.problems, "waived": self.waived,
                "notes": self.notes}

    def summary(self) -> str:
        """'lock, render, ... (waived: verify)': the checks that ran, then the waived ones."""
        ran = ", ".join(c for c in CHECKS if c not in self.waived and c not in self.inactive) \
            or "nothing"
        waived = [c for c in self.waived if c not in self.inactive]
        return ran + (f" (waived: {', '.join(waived)})" if waived else "")


def _report(project: Path, rel: str | Path, kind: str) -> dict[str, Any] | None:
    path = project / rel
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise GenError(f"{rel} is not JSON ({exc})", hint=f"run `gen {kind}` again") from exc
    return data


def _digest_of(ref: str) -> str:
    return ref.rsplit("@", 1)[-1] if "@" in ref else ""


def preflight(project_dir: Path, *, allow: Iterable[str] = ()) -> Preflight:
    """Run every check not waived in `allow` (names: the values of CHECKS)."""
    allowed = set(allow)
    if "all" in allowed:
        allowed = set(CHECKS.values())
    unknown = allowed - set(CHECKS.values())
    if unknown:
        raise UsageError(f"unknown --allow {', '.join(sorted(unknown))}",
                         hint=f"use one of {', '.join(CHECKS.values())} or all")
    result = Preflight(waived=[c for c, word in CHECKS.items() if word in allowed])
    if load_dataset_config(Path(project_dir)).strength is None:  # gen.yaml asks for no gate
        result.inactive.append("strength")
    todo = [c for c in CHECKS if c not in result.waived and c not in result.inactive]
    if not todo:
        return result
    project = load_project(Path(project_dir))
    root = project.root
    tasks = [t.id for t in project.tasks]
    images = load_images(root)
    fix = {"lock": "run `gen lock`", "render": "run `gen render`",
           "images": "run `gen build`", "validate": "run `gen validate`",
           "verify": "run `gen verify-reproducible`",
           "strength": "run `gen validate --strength`"}

    def problem(check: str, text: str) -> None:
        result.problems.setdefault(check, []).append(text)

    if "lock" in todo:
        for line in stale_locks(project):
            problem("lock", f"{line} ({fix['lock']})")
    if "render" in todo:
        try:
            check = render(root, check=True, jobs=None)
        except GenError as exc:
            problem("render", f"the specs do not render: {exc.one_line()}")
        else:
            for rel in check.written:
                problem("render", f"dataset/{rel} differs from what the specs render "
                        f"({fix['render']})")
            for rel in check.removed:
                problem("render", f"dataset/{rel} is not rendered from any spec "
                        f"({fix['render']})")
    if "images" in todo:
        locks, store, names = read_lockset(root), default_store(root), artifact_names(root)
        for task in project.tasks:
            img = images.get(task.id)
            if img is None:
                problem("images", f"task '{task.id}' has no image ({fix['images']})")
                continue
            try:
                key = task_key(project, task, vendored_files(task, locks, names, store),
                               img.engine)
            except GenError as exc:
                problem("images", f"task '{task.id}': cannot recompute its input key: "
                        f"{exc.one_line()}")
                continue
            if key != img.key:
                problem("images", f"task '{task.id}': its image {img.digest[:19]} was built "
                        f"from other inputs than the current ones ({fix['images']})")
        for extra in sorted(set(images) - set(tasks)):
            problem("images", f"images.json records an image for '{extra}', which is no task "
                    "of the project (run `gen build`: it drops it)")
    if "verify" in result.waived:
        # nothing rebuilt these: they are what whoever pushed the registry tag says they are
        for t in tasks:
            img = images.get(t)
            if img is None or not isinstance(img.key, str) or not DIGEST_RE.match(img.key):
                continue
            rec = _report(root, cache_record_path(img.key), "build")
            if rec and rec.get("pulled_from"):
                result.notes.append(f"task '{t}': its image was pulled from the registry "
                                    f"cache ({rec['pulled_from']}) and, with verify waived, "
                                    "not rebuilt anywhere this release can show")
    if "strength" in todo:
        _strength_check(root, tasks, images, lambda text: problem("strength", text))
    for kind, rel, word in (("validate", state.VALIDATE_REPORT.as_posix(), "validated"),
                            ("verify", state.VERIFY_REPORT.as_posix(), "verified")):
        if kind not in todo:
            continue
        rep = _report(root, rel, kind if kind == "validate" else "verify-reproducible")
        if rep is None:
            problem(kind, f"no {rel}: the images were not {word} ({fix[kind]}, or "
                    f"--allow {CHECKS[kind]})")
            continue
        entries: dict[str, Any] = rep.get("tasks") or {}
        missing = [t for t in tasks if t not in entries]
        if missing:
            problem(kind, f"{len(missing)} task(s) not {word}: {', '.join(missing[:SHOWN])} "
                    f"({fix[kind]})")
        for t in tasks:
            entry, img = entries.get(t), images.get(t)
            if entry is None:
                continue
            # each report's own verdict per task (verify: byte-identical, and the recorded
            # image is what the inputs build)
            got = _digest_of(str(entry.get("image", ""))) if kind == "validate" \
                else str(entry.get("digest_a", ""))
            if "ok" not in entry:
                problem(kind, f"task '{t}': {rel} gives no verdict ('ok') for it: the report "
                        f"is from an older gen ({fix[kind]})")
            elif entry["ok"] is not True:
                problem(kind, f"task '{t}' failed {kind} ({rel})")
            elif img is not None and got != img.digest:
                problem(kind, f"task '{t}': {rel} is for image {got[:19] or '?'}, not the "
                        f"released {img.digest[:19]} ({fix[kind]})")
    return result


def _strength_check(root: Path, tasks: list[str], images: dict[str, Any],
                    problem: Callable[[str], None]) -> None:
    """The strength gate: every task measured on its released image and above gen.yaml's
    thresholds (strength_report.gate, as `gen validate --strength` applied it)."""
    rel = state.VALIDATE_STRENGTH.as_posix()
    rep = _report(root, rel, "validate --strength")
    if rep is None:
        problem(f"no {rel}: the tests' strength was not measured (run `gen validate "
                "--strength`, or --allow weak-tests)")
        return
    entries: dict[str, Any] = rep.get("tasks") or {}
    skipped: dict[str, str] = rep.get("skipped") or {}
    for t in tasks:
        entry, img = entries.get(t), images.get(t)
        if entry is None:
            why = f": {skipped[t]}" if t in skipped else ""
            problem(f"task '{t}' was not measured{why} (run `gen validate --strength`)")
        elif entry.get("ok") is not True:
            first = (entry.get("problems") or ["below the thresholds"])[0]
            problem(f"task '{t}' has weak tests: {first.removeprefix('strength: ')}")
        elif img is not None and _digest_of(str(entry.get("image", ""))) != img.digest:
            problem(f"task '{t}': {rel} measured another image than the released "
                    f"{img.digest[:19]} (run `gen validate --strength`)")
