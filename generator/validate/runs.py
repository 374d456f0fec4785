"""Running a task's states in fresh containers of its image: the tests (and for swe tasks eval.sh)
copied in at run time, before and after the solution or gold patch, each run's exit code, output
tail and parsed test results, with network errors told apart."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.core import proc
from generator.core.fsutil import walk_files
from generator.image.toolchain import seal_script
from generator.spec.model import SweTask, Task, TerminalTask
from generator.validate.checks import (
    EVAL_SCRIPT,
    ORACLE_DIR,
    TEST_DIR,
)
from generator.validate.runner import Container, ContainerSpec, Runner
from generator.validate.testlog import (
    parse_swe_log,
    parse_tb_pytest,
)

__all__ = [
    "MISSING",
    "NETWORK_ERRORS",
    "SWE_STATES",
    "TERMINAL_STATES",
    "RunResult",
]


MISSING = "MISSING"


NETWORK_ERRORS = (
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Name or service not known",
    "No address associated with hostname",
    "Could not resolve host",
    "getaddrinfo failed",
    "Name does not resolve",
)


@dataclass
class RunResult:
    state: str
    index: int  # 1-based
    statuses: dict[str, str] | None  # None: no parsable results
    exit_code: int | None
    seconds: float
    timed_out: str | None = None  # the step that was killed at its limit
    solution_exit: int | None = None
    errors: list[str] = field(default_factory=list)  # what went wrong outside the tests
    output_tail: str = ""
    network_error: str | None = None
    # swe tasks: run-tests.sh (Terminal-Bench's entry point) after eval.sh, pytest -rA statuses
    tb_statuses: dict[str, str] | None = None
    tb_ran: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.index, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
            "timed_out": self.timed_out, "solution_exit_code": self.solution_exit,
            "errors": list(self.errors), "tests_parsed": None if self.statuses is None
            else len(self.statuses), "network_error": self.network_error,
        }
        if self.tb_ran:
            out["run_tests_sh"] = self.tb_statuses
        return out


@dataclass(frozen=True)
class _State:
    name: str
    description: str
    with_solution: bool


TERMINAL_STATES = (
    _State("unsolved", "the agent image as built, tests copied in", False),
    _State("solved", "after solution.sh, tests copied in", True),
)


SWE_STATES = (
    _State("test_patch", "the base commit with the test patch (eval.sh)", False),
    _State("gold", "the gold patch applied, then eval.sh", True),
)


def _tail(text: str, n: int = 15) -> str:
    """The end of a test run's output, as it printed it (warnings kept, one line each)."""
    return proc.tail(text, n, sep="\n", warnings=True)


def _network_error(text: str) -> str | None:
    return next((sig for sig in NETWORK_ERRORS if sig in text), None)


def _dir_files(root: Path, dest: str) -> dict[str, tuple[bytes, int]]:
    out: dict[str, tuple[bytes, int]] = {}
    if root.is_dir():
        for f in walk_files(root):
            mode = 0o755 if f.stat().st_mode & 0o111 else 0o644
            out[f"{dest}/{f.relative_to(root).as_posix()}"] = (f.read_bytes(), mode)
    return out


class _TaskRunner:
    """Runs one task's states in fresh containers through a Runner."""

    def __init__(self, task: Task, task_dir: Path, image: str, runner: Runner, *,
                 env: Mapping[str, str], labels: Mapping[str, str],
                 record: Mapping[str, Any] | None = None) -> None:
        self.task = task
        self.record = record  # the image's toolchain record: fills the sealed scripts
        self.task_dir = task_dir
        self.image = image
        self.runner = runner
        self.env = dict(env)
        self.labels = dict(labels)
        self.swe_run_tests = True  # off when deriving: run-tests.sh lists the old tests

    def _solution_files(self) -> dict[str, tuple[bytes, int]]:
        return {f"{ORACLE_DIR}/solution.sh": ((self.task_dir / "solution.sh").read_bytes(),
                                              0o755)}

    def script(self, name: str) -> bytes:
        """A rendered test script, its toolchain record line filled in (sealed grading)."""
        data = (self.task_dir / name).read_bytes()
        if self.record is None:
            return data
        return seal_script(data.decode("utf-8"), self.record).encode("utf-8")

    def test_files(self) -> tuple[dict[str, tuple[bytes, int]], str]:
        """What the harness copies in at test time, and the command it runs."""
        if isinstance(self.task, TerminalTask):
            files = _dir_files(self.task_dir / "tests", TEST_DIR)
            files[f"{TEST_DIR}/run-tests.sh"] = (self.script("run-tests.sh"), 0o755)
            return files, f"bash {TEST_DIR}/run-tests.sh"
        files = _dir_files(self.task_dir / "tests", TEST_DIR)
        files[EVAL_SCRIPT] = (self.script("eval.sh"), 0o755)
        return files, f"bash {EVAL_SCRIPT}"

    def _parse(self, output: str) -> dict[str, str] | None:
        if isinstance(self.task, TerminalTask):
            return parse_tb_pytest(output)
        return parse_swe_log(output, self.task.log_parser)

    def run(self, state: _State, index: int) -> RunResult:
        t = self.task
        test_sec = float(t.timeouts.test_sec)
        agent_sec = float(t.timeouts.agent_sec)
        lifetime = test_sec + (agent_sec if state.with_solution else 0) + 300
        spec = ContainerSpec(env=self.env, memory_mb=t.resources.memory_mb,
                             cpus=t.resources.cpus, lifetime_sec=lifetime,
                             labels={**self.labels, "gen.validate.state": state.name})
        t0 = time.monotonic()
        res = RunResult(state.name, index, None, None, 0.0)
        container: Container = self.runner.start(self.image, spec)
        try:
            if state.with_solution:
                container.put_files(self._solution_files())
                sol = container.exec(f"bash {ORACLE_DIR}/solution.sh", timeout=agent_sec)
                res.solution_exit = sol.exit_code
                if sol.timed_out:
                    res.timed_out = "solution.sh"
                    res.errors.append(f"solution.sh ran past its limit ({agent_sec:g}s, the "
                                      "task's agent timeout); the container was killed")
                    res.output_tail = _tail(sol.output)
                    return res
                if sol.exit_code != 0:
                    res.errors.append(f"solution.sh exited {sol.exit_code}: "
                                      f"{_tail(sol.output, 3).replace(chr(10), ' | ')}")
            files, command = self.test_files()
            container.put_files(files)
            out = container.exec(command, timeout=test_sec)
            res.exit_code = out.exit_code
            res.output_tail = _tail(out.output)
            res.network_error = _network_error(out.output)
            if out.timed_out:
                res.timed_out = "tests"
                res.errors.append(f"the tests ran past the task's test timeout ({test_sec:g}s); "
                                  "the container was killed")
            if isinstance(t, SweTask):
                head = out.output.split(">>>>> Start Test Output", 1)[0]
                if re.search(r"error: (patch failed|corrupt patch|.*: patch does not apply|"
                             r"unrecognized input|No valid patches)", head):
                    res.errors.append("the test patch does not apply to the image's repository")
            res.statuses = self._parse(out.output)
            if isinstance(t, SweTask) and self.swe_run_tests and not out.timed_out:
                # the same state through run-tests.sh, as a Terminal-Bench harness runs it
                files = {f"{TEST_DIR}/run-tests.sh": (self.script("run-tests.sh"), 0o755)}
                container.put_files(files)
                tb = container.exec(f"bash {TEST_DIR}/run-tests.sh", timeout=test_sec)
                res.tb_ran = True
                if tb.timed_out:
                    res.timed_out = "run-tests.sh"
                    res.errors.append(f"run-tests.sh ran past the task's test timeout "
                                      f"({test_sec:g}s); the container was killed")
                else:
                    res.tb_statuses = parse_tb_pytest(tb.output)
            return res
        finally:
            container.remove()
            res.seconds = time.monotonic() - t0
