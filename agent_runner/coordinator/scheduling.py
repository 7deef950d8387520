"""Scheduling rules shared by `run`, `watch` and `--dry-run`: events, summary, overlap, pending, budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import source_repo
from agent_runner.core.protocols import Slot
from agent_runner.core.result import TaskResult
from agent_runner.core.task import InvalidTask, Task, TaskStatus
from agent_runner.queue.intake import sync_tasks
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue

DONE = (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)


@dataclass(frozen=True)
class RunEvent:
    """Something the scheduler did: started, finished, failed, requeued, invalid, model_blocked, ..."""

    kind: str
    task: str | None = None
    attempt: int | None = None
    worker: str | None = None
    message: str = ""
    result: TaskResult | None = None
    final: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the event as one JSON-ready mapping (for `run --json`)."""
        data: dict[str, Any] = {"event": self.kind, "ts": round(time.time(), 3)}
        for name in ("task", "attempt", "worker", "message"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.final:
            data["final"] = True
        if self.result is not None:
            data["result"] = self.result.for_queue()
        return data


@dataclass
class RunSummary:
    """What a run did, for the closing table and the exit code."""

    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unpublished: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    blocked_models: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)  # queued tasks held back by a setup problem
    cost_usd: float = 0.0
    tokens: int = 0
    n_attempts: int = 0
    wall_s: float = 0.0
    interrupted: bool = False

    def add_cost(self, result: TaskResult) -> None:
        """Count one attempt's spend and tokens."""
        self.n_attempts += 1
        self.cost_usd += result.cost_usd or 0.0
        self.tokens += result.usage.total

    @property
    def exit_code(self) -> int:
        """0 when everything it ran finished, 1 when anything failed, was blocked or held, 130 on Ctrl-C."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.unpublished or self.blocked_models or self.held else 0

    def to_json(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready mapping."""
        return {**asdict(self), "exit_code": self.exit_code}


def model_for(task: dict[str, Any], override: str | None, config: RunnerConfig) -> str:
    """Return the model spec an attempt uses: the run's --model, else the task's, else the config's."""
    return override or task.get("model") or config.model


def overlaps(a: list[str], b: list[str]) -> bool:
    """Return whether two path lists touch the same file or folder (one contains or equals the other)."""
    for left in a:
        lp = PurePosixPath(left.strip("/") or ".")
        for right in b:
            rp = PurePosixPath(right.strip("/") or ".")
            if lp == rp or lp.is_relative_to(rp) or rp.is_relative_to(lp) or "." in (str(lp), str(rp)):
                return True
    return False


def is_pending(
    state: TaskState,
    states: dict[str, TaskState],
    *,
    in_scope: Callable[[TaskState], bool],
    slots: list[Slot],
    seen: frozenset[str] = frozenset(),
) -> bool:
    """Return whether a queued task can still run in this run (now or after back-off, deps or overlap)."""
    if state.status != TaskStatus.QUEUED or not state.task or not in_scope(state) or state.id in seen:
        return False
    if not any(slot.accepts(state.task.get("machine")) for slot in slots):
        return False
    for dep_id in state.depends_on:
        dep = states.get(dep_id)
        if dep is None:
            return False
        if dep.status in DONE or dep.status == TaskStatus.RUNNING:
            continue
        if not is_pending(dep, states, in_scope=in_scope, slots=slots, seen=seen | {state.id}):
            return False
    return True


def sync_task_files(root: Path, config: RunnerConfig, queue: Queue) -> list[InvalidTask]:
    """Bring the task folder into the queue; return the invalid files found."""
    return list(sync_tasks(root, config, queue).invalid)


def queued_by_base(
    root: Path, states: dict[str, TaskState], in_scope: Callable[[TaskState], bool]
) -> dict[tuple[str, str | None], int]:
    """Count the queued tasks in scope per (source repo, base branch)."""
    counts: dict[tuple[str, str | None], int] = {}
    for state in states.values():
        if state.status == TaskStatus.QUEUED and state.task and in_scope(state):
            try:
                key = (source_repo(root, Task.model_validate(state.task)), state.task.get("base"))
            except ValueError:
                continue  # the scheduler fails it when it comes up
            counts[key] = counts.get(key, 0) + 1
    return counts


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


@dataclass
class SchedulerOptions:
    """What one run may touch: task ids, a model override, and whether to keep watching."""

    only: frozenset[str] = field(default_factory=frozenset)
    model: str | None = None
    watch: bool = False
