"""What one run may touch (`SchedulerOptions`) and the model spec an attempt uses under them."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.task import Task, model_spec_for


@dataclass
class SchedulerOptions:
    """What one run may touch: task ids, a model override, and whether to keep watching."""

    only: frozenset[str] = field(default_factory=frozenset)
    model: str | None = None
    watch: bool = False


def model_for(task: Task | None, override: str | None, config: RunnerConfig) -> str:
    """Return the model spec an attempt uses under `config` (the rule: core.task.model_spec_for)."""
    return model_spec_for(task, override=override, default=config.model)
