"""What a run reports: one `RunEvent` per thing the scheduler did, and the `RunSummary` it closes with."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_runner.coordinator.budget import BudgetStop
from agent_runner.core.cost import CostTotal
from agent_runner.core.result import TaskResult


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
    throttled: dict[str, str] = field(default_factory=dict)  # provider (and key) -> when and why, in short
    known_cost_usd: float = 0.0  # what the attempts with a price spent: what a budget counts
    n_unknown_cost: int = 0  # attempts of unknown cost (a model with no price): a budget counts them as $0
    tokens: int = 0
    n_attempts: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    budget_stop: BudgetStop | None = None  # the budget that stopped the run, what is left, how to go on

    def add_cost(self, result: TaskResult) -> None:
        """Count one attempt's spend and tokens."""
        self.n_attempts += 1
        if result.cost_usd is None:
            self.n_unknown_cost += 1
        else:
            self.known_cost_usd += result.cost_usd
        self.tokens += result.usage.total

    @property
    def cost(self) -> CostTotal:
        """What the run's attempts spent: the known part and how many were of unknown cost."""
        return CostTotal(self.known_cost_usd, self.n_unknown_cost)

    @property
    def cost_usd(self) -> float | None:
        """What the run spent, or None when some attempt's cost is unknown."""
        return self.cost.usd

    @property
    def exit_code(self) -> int:
        """0 when everything it ran finished, 1 when anything failed, was blocked or held, 3 when a budget
        stopped it with work left, 130 on Ctrl-C."""
        if self.interrupted:
            return 130
        if self.failed or self.unpublished or self.blocked_models or self.held:
            return 1
        return 3 if self.budget_stop is not None and self.budget_stop.n_queued else 0

    def to_json(self) -> dict[str, Any]:
        """Return the summary as a JSON-ready mapping."""
        return {**asdict(self), "cost_usd": self.cost_usd, "exit_code": self.exit_code}
