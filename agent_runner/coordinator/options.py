"""What one run may touch (`SchedulerOptions`) and the model spec an attempt uses under them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent_runner.config.runner import RunnerConfig


@dataclass
class SchedulerOptions:
    """What one run may touch: task ids, a model override, and whether to keep watching."""

    only: frozenset[str] = field(default_factory=frozenset)
    model: str | None = None
    watch: bool = False


def model_for(task: dict[str, Any], override: str | None, config: RunnerConfig) -> str:
    """Return the model spec an attempt uses: the run's --model, else the task's, else the config's."""
    return override or task.get("model") or config.model
