"""A run's spending limit: whether the next task's cost cap fits beside what is spent and running."""

from __future__ import annotations

from dataclasses import dataclass

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.task import Task


@dataclass
class Budget:
    """A run's spending limit: a task starts only if its cost cap fits beside the running tasks' caps."""

    config: RunnerConfig
    hit: bool = False  # no task starts any more in this run
    blocked: bool = False  # this dispatch round held a task back for its cost

    def fits(self, spent: float, running: list[Task], task: Task) -> bool:
        """Whether `task`'s cost cap fits what is left after `spent` and the caps of `running`."""
        budget = self.config.budget_usd
        if budget is None:
            return True
        if spent + sum(map(self._cap, running)) + self._cap(task) <= budget + 1e-9:
            return True
        self.blocked = True
        return False

    def exhausted(self, spent: float, *, n_running: int) -> str | None:
        """Once nothing runs and a task was held back: stop for good and return the message (once)."""
        if not self.blocked or n_running or self.hit:
            return None
        self.hit = True
        budget = self.config.budget_usd or 0.0
        return f"spent ${spent:.2f} of the ${budget:.2f} budget; the next task's cost limit does not fit"

    def _cap(self, task: Task) -> float:
        cap = self.config.limits_for(task.kind, task.limits).cost_usd
        return (self.config.budget_usd or 0.0) if cap is None else cap
