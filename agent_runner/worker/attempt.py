"""The fixed facts of one attempt, read from its request: what its agent and sandbox are built of."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.result import WorkRequest
from agent_runner.core.task import Limits, Task
from agent_runner.repo.layout import AttemptPaths


@dataclass(frozen=True)
class Attempt:
    """One attempt's request, configuration, state folder, paths, model spec and limits."""

    request: WorkRequest
    config: RunnerConfig
    workdir: Path
    paths: AttemptPaths
    model_spec: str
    limits: Limits

    @property
    def task(self) -> Task:
        """Return the task the attempt works on."""
        return self.request.task
