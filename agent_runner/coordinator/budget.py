"""A run's budgets: its spend (`budget_usd`) and its time (`run_for`, `run_until`).

A task starts only when its cost limit fits in what is left of the spend budget after the spend so far
(recorded attempts, and what running attempts spent, as pause.py counts it), and when its attempt's
wall-clock limit (`attempt_minutes`) ends before the time budget does. Once the spend reaches the budget or
the time budget ends, nothing starts any more and the running attempts pause at their next model call
(`pause.py`); a run that has nothing left that fits stops the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from agent_runner.config.runner import RunnerConfig
from agent_runner.config.timebudget import ends_at
from agent_runner.core.task import Task
from agent_runner.worker.deadline import attempt_minutes

EPSILON_USD = 1e-9


class BudgetKind(StrEnum):
    """Which of a run's budgets stopped it."""

    COST = "cost"
    TIME = "time"


@dataclass(frozen=True)
class BudgetStop:
    """Which budget stopped a run, the figure reached against its limit, what is left, and how to go on."""

    budget: BudgetKind
    reached: str  # `$0.06 spent` or `17:03`
    limit: str  # `$0.05` or `--for 8h (until 07:00)`
    message: str  # the whole sentence, as the run printed it when it stopped
    command: str  # the command that goes on: `run-agents run --budget 0.05`
    n_queued: int = 0  # tasks in this run's scope still queued (the paused ones among them)
    n_paused: int = 0  # attempts paused at a model call: queued again, no attempt spent


@dataclass
class Budget:
    """A run's spend and time budgets: whether a task may start, and whether the run has reached one."""

    config: RunnerConfig
    clock: Callable[[], float] = time.time
    ends_at: float | None = None  # when the time budget ends (time.time()); set by `start`
    hit: bool = False  # no task starts any more in this run
    blocked: BudgetKind | None = None  # this dispatch round held a task back, for this budget
    need: float = 0.0  # what the smallest task held back needed: dollars, or seconds

    def start(self) -> None:
        """Fix the time budget's end from now (`--for` counts from the start of the run)."""
        config = self.config
        self.ends_at = ends_at(run_for=config.run_for, run_until=config.run_until, started=self.clock())

    def fits(self, spent: float, task: Task) -> bool:
        """Whether `task` may start: its cost limit fits the rest after `spent`; its attempt ends in time."""
        budget = self.config.budget_usd
        if budget is not None and spent + self.cap(task) > budget + EPSILON_USD:
            return self._hold(BudgetKind.COST, self.cap(task))
        if self.ends_at is not None and self.clock() + self._seconds(task) > self.ends_at:
            return self._hold(BudgetKind.TIME, self._seconds(task))
        return True

    def reached(self, spent: float) -> BudgetKind | None:
        """Return the budget the run has reached (spend at its budget, or the time budget over), or None."""
        budget = self.config.budget_usd
        if budget is not None and spent >= budget - EPSILON_USD:
            return BudgetKind.COST
        if self.ends_at is not None and self.clock() >= self.ends_at:
            return BudgetKind.TIME
        return None

    def exhausted(self, *, n_running: int) -> BudgetKind | None:
        """Once nothing runs and a task was held back for a budget: that budget (the run stops)."""
        return None if n_running or self.hit else self.blocked

    def stop_message(self, kind: BudgetKind, spent: float, *, is_reached: bool) -> str:
        """Return the sentence that says which budget stopped the run and why."""
        if kind == BudgetKind.COST:
            budget = self.config.budget_usd or 0.0
            why = (
                "is reached" if is_reached else f"has no room for the next task's ${self.need:.2f} cost limit"
            )
            return f"the cost budget {why}: ${spent:.2f} spent of ${budget:.2f}"
        left_min = max((self.ends_at or 0.0) - self.clock(), 0.0) / 60
        if is_reached:
            return f"the time budget ended at {self.end_text()} ({self.time_limit_text()})"
        return (
            f"the time budget leaves {left_min:.0f} min (until {self.end_text()}), less than the next "
            f"attempt's {self.need / 60:.0f} min wall-clock limit (attempt_minutes)"
        )

    def stop_record(self, kind: BudgetKind, spent: float, message: str) -> BudgetStop:
        """Return the record of the stop (what the summary says; without the counts of what is left)."""
        if kind == BudgetKind.COST:
            budget = self.config.budget_usd or 0.0
            return BudgetStop(
                kind, f"${spent:.2f} spent", f"${budget:.2f}", message, go_on_command(self.config)
            )
        return BudgetStop(kind, self.end_text(), self.time_limit_text(), message, go_on_command(self.config))

    def end_text(self) -> str:
        """Return the time budget's end as a local time, HH:MM."""
        return time.strftime("%H:%M", time.localtime(self.ends_at or 0.0))

    def time_limit_text(self) -> str:
        """Return the time budget as the user set it: `--for 8h`, `--until 07:00`, or both."""
        parts = [f"--for {self.config.run_for}"] if self.config.run_for else []
        parts += [f"--until {self.config.run_until}"] if self.config.run_until else []
        return " and ".join(parts)

    def _hold(self, kind: BudgetKind, need: float) -> bool:
        if self.blocked != kind or need < self.need:
            self.need = need
        self.blocked = kind
        return False

    def cap(self, task: Task) -> float:
        """Return the most an attempt of `task` may spend: its cost limit (none: the whole budget)."""
        cap = self.config.limits_for(task.kind, task.limits).cost_usd
        return (self.config.budget_usd or 0.0) if cap is None else cap

    def _seconds(self, task: Task) -> float:
        return attempt_minutes(self.config.limits_for(task.kind, task.limits)) * 60


def go_on_command(config: RunnerConfig) -> str:
    """Return the command that goes on with a fresh run of the same budgets (each run has its own)."""
    parts = ["run-agents run"]
    parts += [f"--budget {config.budget_usd:g}"] if config.budget_usd else []
    parts += [f"--for {config.run_for}"] if config.run_for else []
    parts += [f"--until {config.run_until}"] if config.run_until else []
    return " ".join(parts)
