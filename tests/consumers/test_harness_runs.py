"""gen's exports RUN in the real harnesses, graded by the harnesses' own result files:

* `tb run` (terminal-bench 0.2.18) on `gen export --format tb`: the oracle agent resolves every
  task, the nop agent none, and a tampering agent (agents/tb_tamper_agent.py, loaded through
  `--agent-import-path`, running gen's whole tampering battery as root) none. Asserted from
  `<output>/<run id>/results.json` (`results[].is_resolved`, `failure_mode`).
* `harbor run` (harbor 0.25.0) on `gen export --format harbor`: oracle reward 1 on every task,
  nop and the tampering agent (agents/harbor_tamper_agent.py) reward 0. Asserted from each
  trial's `<jobs>/<job>/<trial>/result.json` (`verifier_result.rewards.reward`,
  `exception_info`).

Both at their default concurrency, with Docker Compose v2 installed as a CLI plugin by
`scripts/consumers.py setup compose`. Each run's per-task table (wall times from the result
files) is printed and written to <state>/consumers/harness-runs.md. The swebench end-to-end run
(gold, no-op, empty and tampering patches, on an engine that has never seen the image) is in
test_swebench_eval.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.validate.attacks import write_battery
from tests.consumers.test_export_consumers import example_tasks, gen_export
from tests.consumers.test_swebench_eval import docker_env, ensure_built

__all__ = ["docker_env"]  # the Docker engine fixture, shared with test_swebench_eval

pytestmark = [pytest.mark.consumers, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / "agents"
RUN_TIMEOUT_SEC = 1800
TABLE: list[str] = []


@pytest.fixture(scope="module")
def harness_env(consumers: Any, docker_env: dict[str, str]) -> dict[str, str]:
    """The Docker engine's environment with Docker Compose v2 installed as a CLI plugin."""
    venvs = consumers.VENVS_MODULE
    try:
        venvs.setup_compose()
    except venvs.SetupError as exc:
        consumers.skip_or_fail(f"Docker Compose v2: {exc}")
    proc = subprocess.run(["docker", "compose", "version"], env=docker_env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"docker compose does not work: {proc.stderr}"
    ensure_built(consumers, example_tasks())
    return {k: v for k, v in docker_env.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}


@pytest.fixture(scope="module")
def battery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """gen's whole tampering battery, and the example's test ids the attacker is given."""
    d = tmp_path_factory.mktemp("battery")
    names = write_battery(d / "battery.sh")
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        assert "ld-so-preload" in names, "no C compiler for the ld.so.preload attack"
    ids = []
    for spec in sorted((REPO / "tasks").glob("*/task.spec.yaml")):
        doc = yaml.safe_load(spec.read_text())
        ids += [*doc.get("FAIL_TO_PASS", []), *doc.get("PASS_TO_PASS", [])]
    (d / "tests.txt").write_text("".join(f"{i}\n" for i in ids))
    # the attacks the grader does not refuse outright: the tests run, under attack, and fail
    write_battery(d / "running.sh", [n for n in names if n in RUNNING_ATTACKS])
    yield {"GEN_TAMPER_BATTERY": str(d / "battery.sh"), "GEN_TAMPER_TESTS": str(d / "tests.txt"),
           "running": str(d / "running.sh")}


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return float("nan")
    a = datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    return (b - a).total_seconds()


def _table(harness: str, agent: str, rows: list[tuple[str, str, float]], wall: float) -> None:
    lines = [f"{harness} / {agent} (whole run {wall:.1f}s):",
             "| task | result | seconds |", "| --- | --- | --- |",
             *(f"| {t} | {r} | {s:.1f} |" for t, r, s in sorted(rows))]
    text = "\n".join(lines)
    print(text)
    TABLE.append(text)
    state = Path(os.environ.get("GEN_STATE") or REPO / ".gen") / "consumers"
    state.mkdir(parents=True, exist_ok=True)
    (state / "harness-runs.md").write_text("\n\n".join(TABLE) + "\n")


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess[str],
                                                                    float]:
    t0 = datetime.now().timestamp()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_SEC, check=False)
    return proc, datetime.now().timestamp() - t0


@pytest.fixture(scope="module")
def tb_export(harness_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tb") / "dataset"
    gen_export(REPO, "tb", out)
    return out


@pytest.fixture(scope="module")
def harbor_export(harness_env: dict[str, str],
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("harbor") / "dataset"
    gen_export(REPO, "harbor", out)
    return out


# "tamper": the whole battery at once (the grader refuses: the first check that fails says why);
# "tamper-running": only the attacks that leave the toolchain intact (conftest files, fakes on
# PATH, a late PASSED printer, pre-written rewards), so the tests do run under them
AGENT_CASES = [("oracle", True), ("nop", False), ("tamper", False), ("tamper-running", False)]
RUNNING_ATTACKS = ("conftest", "fake-on-path", "fake-passed-lines", "prewritten-results")


def _tamper_env(agent: str, battery: dict[str, str]) -> dict[str, str]:
    script = battery["running"] if agent == "tamper-running" else battery["GEN_TAMPER_BATTERY"]
    return {"GEN_TAMPER_BATTERY": script, "GEN_TAMPER_TESTS": battery["GEN_TAMPER_TESTS"],
            "PYTHONPATH": str(AGENTS)}


@pytest.mark.parametrize(("agent", "resolved"), AGENT_CASES)
def test_tb_run(agent: str, resolved: bool, consumers: Any, tb_export: Path,
                harness_env: dict[str, str], battery: dict[str, str], tmp_path: Path) -> None:
    tb = consumers.ensure_venv("tb").parent / "tb"
    env = dict(harness_env)
    pick = ["--agent", agent]
    if agent.startswith("tamper"):
        env.update(_tamper_env(agent, battery))
        pick = ["--agent-import-path", "tb_tamper_agent:TamperAgent"]
    run_id = f"gen-{agent}"
    proc, wall = _run([str(tb), "run", "--dataset-path", str(tb_export), *pick,
                       "--output-path", str(tmp_path / "runs"), "--run-id", run_id,
                       "--no-upload-results"], env, tmp_path)
    results_file = tmp_path / "runs" / run_id / "results.json"
    assert results_file.is_file(), f"tb run wrote no results.json:\n{proc.stdout[-3000:]}\n" \
                                   f"{proc.stderr[-3000:]}"
    results = json.loads(results_file.read_text())
    trials = {r["task_id"]: r for r in results["results"]}
    assert sorted(trials) == example_tasks(), results
    _table("tb", agent, [(t, "resolved" if r["is_resolved"] else "unresolved",
                          _seconds(r["trial_started_at"], r["trial_ended_at"]))
                         for t, r in trials.items()], wall)
    for task, r in trials.items():
        assert bool(r["is_resolved"]) is resolved, (task, r["failure_mode"], r["parser_results"])
        # the tests ran and were parsed: unresolved because they failed, not because tb broke
        assert r["failure_mode"] in ("unset", "none"), (task, r["failure_mode"])
    assert results["n_resolved"] == (len(trials) if resolved else 0)


@pytest.mark.parametrize(("agent", "resolved"), AGENT_CASES)
def test_harbor_run(agent: str, resolved: bool, consumers: Any, harbor_export: Path,
                    harness_env: dict[str, str], battery: dict[str, str],
                    tmp_path: Path) -> None:
    harbor = consumers.ensure_venv("harbor").parent / "harbor"
    env = dict(harness_env)
    pick = ["-a", agent]
    if agent.startswith("tamper"):
        env.update(_tamper_env(agent, battery))
        pick = ["--agent-import-path", "harbor_tamper_agent:TamperAgent"]
    job = f"gen-{agent}"
    proc, wall = _run([str(harbor), "run", "-p", str(harbor_export), *pick,
                       "-o", str(tmp_path / "jobs"), "--job-name", job, "-y", "-q"],
                      env, tmp_path)
    job_dir = tmp_path / "jobs" / job
    trial_files = sorted(job_dir.glob("*/result.json"))
    assert (job_dir / "result.json").is_file() and trial_files, \
        f"harbor run wrote no results:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    trials = {}
    for f in trial_files:
        r = json.loads(f.read_text())
        trials[r["task_name"].split("/", 1)[1]] = r
    assert sorted(trials) == example_tasks(), sorted(trials)
    rows = []
    for task, r in trials.items():
        reward = ((r.get("verifier_result") or {}).get("rewards") or {}).get("reward")
        rows.append((task, f"reward {reward}", _seconds(r["started_at"], r["finished_at"])))
    _table("harbor", agent, rows, wall)
    for task, r in trials.items():
        assert r["exception_info"] is None, (task, r["exception_info"])
        reward = r["verifier_result"]["rewards"]["reward"]
        assert reward == (1 if resolved else 0), (task, reward)
    stats = json.loads((job_dir / "result.json").read_text())["stats"]
    assert stats["n_errored_trials"] == 0, stats
