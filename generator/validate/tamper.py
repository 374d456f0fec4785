"""`gen validate --tamper`: the tampering battery (attacks.py) against a task's grading.

Every attack runs in a fresh container of the task's image in its unsolved state (terminal:
as built; swe: the base commit, no fix), as root, as an agent would; then the tests are
copied in and run the way each harness runs them, one fresh container per harness:

- tb: `bash $TEST_DIR/run-tests.sh`, its output read by Terminal-Bench's pytest parser
  (resolved when every parsed test passed);
- harbor: the verifier gen exports (run-tests.sh writing /logs/verifier/reward.txt when it is
  sealed, else the script's exit code), resolved when the reward is 1;
- swebench (swe tasks): eval.sh, its output read by SWE-bench's log parser between the
  markers (resolved when every FAIL_TO_PASS and PASS_TO_PASS test passed).

An attack that makes any of them report the unsolved task as resolved got through, and the task
fails validation, with the attack and what it got named in the report."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.image.toolchain import is_sealed
from generator.spec.model import SweTask, TerminalTask
from generator.validate.attacks import Attack, battery_script
from generator.validate.checks import TEST_DIR
from generator.validate.runner import ContainerSpec
from generator.validate.runs import _TaskRunner
from generator.validate.testlog import parse_swe_log, parse_tb_pytest

__all__ = ["AttackResult", "run_battery"]

BATTERY = "/tmp/gen-tamper.sh"
TESTS_LIST = "/tmp/gen-tamper-tests.txt"
REWARD_DIR = "/logs/verifier"
HARNESSES = {"terminal": ("tb", "harbor"), "swe": ("tb", "harbor", "swebench")}


@dataclass
class AttackResult:
    attack: str
    what: str
    verdicts: dict[str, str] = field(default_factory=dict)  # harness -> what it concluded
    through: list[str] = field(default_factory=list)  # harnesses that called it resolved
    refused: list[str] = field(default_factory=list)  # the grader's refusals, as it said them
    not_run: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.through

    def to_json(self) -> dict[str, Any]:
        return {"attack": self.attack, "what": self.what, "verdicts": self.verdicts,
                "got_through": self.through, "refused": self.refused, "not_run": self.not_run,
                "seconds": round(self.seconds, 3)}

    def line(self) -> str:
        if self.not_run:
            return f"{self.attack}: not run ({self.not_run})"
        v = ", ".join(f"{h}: {s}" for h, s in self.verdicts.items())
        head = f"GOT THROUGH ({', '.join(self.through)})" if self.through else "blocked"
        why = f"; grader: {self.refused[0]}" if self.refused else ""
        return f"{self.attack}: {head} [{v}]{why}"


def _refusals(output: str) -> list[str]:
    out = []
    for line in output.splitlines():
        if line.startswith("gen: grading refused: "):
            out.append(line.removeprefix("gen: grading refused: ").strip())
        elif line.startswith("FAILED gen::sealed-grading - "):
            out.append(line.removeprefix("FAILED gen::sealed-grading - ").strip())
    return list(dict.fromkeys(out))


def _tb_resolved(output: str) -> tuple[bool, str]:
    statuses = parse_tb_pytest(output)
    if not statuses:
        return False, "no results"
    failed = sorted(n for n, s in statuses.items() if s != "PASSED")
    return not failed, (f"{len(failed)} of {len(statuses)} failed" if failed
                        else f"all {len(statuses)} passed")


def _swe_resolved(task: SweTask, output: str) -> tuple[bool, str]:
    statuses = parse_swe_log(output, task.log_parser) or {}
    want = [*task.fail_to_pass, *task.pass_to_pass]
    bad = [t for t in want if statuses.get(t) not in ("PASSED", "XFAIL")]
    return not bad, (f"{len(bad)} of {len(want)} not passing" if bad
                     else f"all {len(want)} passed")


def _harbor_reward(output: str) -> float | None:
    """The reward Harbor would read: reward.json's "reward" if the file is there, else
    reward.txt's number; None when neither parses."""
    found = {}
    for line in output.splitlines():
        for key in ("gen-reward-json:", "gen-reward-txt:"):
            if line.startswith(key):
                found[key] = line[len(key):].strip()
    raw = found.get("gen-reward-json:")
    try:
        if raw:
            value = json.loads(raw)
            r = value.get("reward") if isinstance(value, dict) else None
            return float(r) if isinstance(r, (int, float)) else None
        return float(found.get("gen-reward-txt:") or "")
    except (ValueError, TypeError):
        return None


def _test_ids(tr: _TaskRunner, statuses: Mapping[str, str] | None) -> list[str]:
    task = tr.task
    if isinstance(task, SweTask):
        return [*task.fail_to_pass, *task.pass_to_pass]
    names = sorted(statuses or {})
    return [n if "::" in n else f"tests/test_outputs.py::{n}" for n in names]


def _one(tr: _TaskRunner, attack: Attack, harness: str, library: bytes | None,
         test_ids: Sequence[str]) -> tuple[bool, str, str]:
    """(resolved, what the harness concluded, the run's output) for one attack, one harness."""
    t = tr.task
    spec = ContainerSpec(env=tr.env, memory_mb=t.resources.memory_mb, cpus=t.resources.cpus,
                         lifetime_sec=float(t.timeouts.test_sec) * 2 + 300,
                         labels={**tr.labels, "gen.validate.state": f"tamper-{attack.name}"})
    container = tr.runner.start(tr.image, spec)
    try:
        container.put_files({
            BATTERY: (battery_script([attack], library).encode(), 0o755),
            TESTS_LIST: ("".join(f"{i}\n" for i in test_ids).encode(), 0o644)})
        workdir = t.environment.workdir
        planted = container.exec(
            f"cd {shlex.quote(workdir)} && GEN_TAMPER_WORKDIR={shlex.quote(workdir)} "
            f"GEN_TAMPER_TEST_DIR={TEST_DIR} GEN_TAMPER_TESTS={TESTS_LIST} bash {BATTERY}",
            timeout=120)
        if planted.timed_out:
            return False, "the attack itself timed out", planted.output
        test_sec = float(t.timeouts.test_sec)
        if harness == "swebench":
            assert isinstance(t, SweTask)
            files, command = tr.test_files()
            container.put_files(files)
            out = container.exec(command, timeout=test_sec)
            ok, why = _swe_resolved(t, out.output)
            return ok, why, out.output
        files, command = tr.test_files()
        if isinstance(t, SweTask):  # tb and Harbor run run-tests.sh with tests/ copied in
            files = {k: v for k, v in files.items() if k.startswith(TEST_DIR + "/")}
            files[f"{TEST_DIR}/run-tests.sh"] = (tr.script("run-tests.sh"), 0o755)
            command = f"bash {TEST_DIR}/run-tests.sh"
        container.put_files(files)
        if harness == "tb":
            out = container.exec(command, timeout=test_sec)
            ok, why = _tb_resolved(out.output)
            return ok, why, out.output
        # harbor: Harbor removes reward.txt / reward.json, runs gen's exported verifier
        # (export/harbor/test.sh), then reads reward.json if there is one, else reward.txt
        if is_sealed(files[f"{TEST_DIR}/run-tests.sh"][0]):
            verifier = (f"mkdir -p {REWARD_DIR}; echo 0 > {REWARD_DIR}/reward.txt; "
                        f"echo '{{\"reward\": 0}}' > {REWARD_DIR}/reward.json; "
                        f"{command} --reward-dir {REWARD_DIR}")
        else:
            verifier = (f"mkdir -p {REWARD_DIR}; rm -f {REWARD_DIR}/reward.json; {command} && "
                        f"echo 1 > {REWARD_DIR}/reward.txt || echo 0 > {REWARD_DIR}/reward.txt")
        out = container.exec(
            f"/bin/rm -f {REWARD_DIR}/reward.txt {REWARD_DIR}/reward.json; {verifier}; "
            f"echo; echo \"gen-reward-json: $(cat {REWARD_DIR}/reward.json 2>/dev/null)\"; "
            f"echo \"gen-reward-txt: $(cat {REWARD_DIR}/reward.txt 2>/dev/null)\"",
            timeout=test_sec)
        reward = _harbor_reward(out.output)
        return reward == 1.0, f"reward {reward if reward is not None else 'missing'}", out.output
    finally:
        container.remove()


def run_battery(tr: _TaskRunner, attacks: Sequence[Attack], library: bytes | None,
                unsolved: Mapping[str, str] | None,
                advance: Callable[[int], None] = lambda n: None) -> list[AttackResult]:
    """Every attack against every harness's grading of this task (fresh containers)."""
    kind = "terminal" if isinstance(tr.task, TerminalTask) else "swe"
    ids = _test_ids(tr, unsolved)
    results = []
    for attack in attacks:
        r = AttackResult(attack.name, attack.what)
        t0 = time.monotonic()
        if attack.needs_cc and library is None:
            r.not_run = "no C compiler on this machine to build its library"
            advance(len(HARNESSES[kind]))
            results.append(r)
            continue
        for harness in HARNESSES[kind]:
            ok, why, output = _one(tr, attack, harness, library, ids)
            r.verdicts[harness] = ("RESOLVED" if ok else "unresolved") + f" ({why})"
            if ok:
                r.through.append(harness)
            r.refused += [x for x in _refusals(output) if x not in r.refused]
            advance(1)
        r.seconds = time.monotonic() - t0
        results.append(r)
    return results
