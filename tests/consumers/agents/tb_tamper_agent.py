"""A Terminal-Bench agent that does not solve the task: it runs gen's tampering battery
(generator/validate/attacks.py, written by the test to $GEN_TAMPER_BATTERY) as root in the
task's container, through the agent's own tmux session, and stops. Loaded by
`tb run --agent-import-path tb_tamper_agent:TamperAgent` (this directory on PYTHONPATH).
Runs in the tb venv: the standard library and terminal-bench only."""

from __future__ import annotations

import os
from pathlib import Path

from terminal_bench.agents.base_agent import AgentResult, BaseAgent
from terminal_bench.agents.failure_mode import FailureMode
from terminal_bench.terminal.tmux_session import TmuxSession


class TamperAgent(BaseAgent):
    @staticmethod
    def name() -> str:
        return "gen-tamper"

    def perform_task(self, instruction: str, session: TmuxSession,
                     logging_dir: Path | None = None) -> AgentResult:
        battery = Path(os.environ["GEN_TAMPER_BATTERY"])
        session.copy_to_container(battery, container_dir="/tmp",
                                  container_filename="gen-tamper.sh")
        tests = os.environ.get("GEN_TAMPER_TESTS")
        if tests:
            session.copy_to_container(Path(tests), container_dir="/tmp",
                                      container_filename="gen-tamper-tests.txt")
        session.send_keys(["bash /tmp/gen-tamper.sh > /tmp/gen-tamper.log 2>&1", "Enter"],
                          block=True, max_timeout_sec=300)
        return AgentResult(total_input_tokens=0, total_output_tokens=0,
                           failure_mode=FailureMode.NONE)
