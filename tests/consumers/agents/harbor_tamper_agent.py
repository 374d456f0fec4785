"""A Harbor agent that does not solve the task: it uploads gen's tampering battery
(generator/validate/attacks.py, written by the test to $GEN_TAMPER_BATTERY) into the task's
environment and runs it as root, then stops. Loaded by
`harbor run --agent-import-path harbor_tamper_agent:TamperAgent` (this directory on
PYTHONPATH). Runs in the Harbor venv: the standard library and harbor only."""

from __future__ import annotations

import os
from pathlib import Path

from harbor.agents.base import BaseAgent
from harbor.environments.base import BaseEnvironment
from harbor.models.agent.context import AgentContext


class TamperAgent(BaseAgent):
    @staticmethod
    def name() -> str:
        return "gen-tamper"

    def version(self) -> str:
        return "1.0.0"

    async def setup(self, environment: BaseEnvironment) -> None:
        return None

    async def run(self, instruction: str, environment: BaseEnvironment,
                  context: AgentContext) -> None:
        await environment.upload_file(Path(os.environ["GEN_TAMPER_BATTERY"]), "/tmp/gen-tamper.sh")
        tests = os.environ.get("GEN_TAMPER_TESTS")
        if tests:
            await environment.upload_file(Path(tests), "/tmp/gen-tamper-tests.txt")
        await environment.exec("bash /tmp/gen-tamper.sh > /tmp/gen-tamper.log 2>&1",
                               timeout_sec=300, user="root")
