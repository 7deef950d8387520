"""The scheduler's view of rate limits: which task may start now, and the events throttling makes.

Glue between the scheduler's running attempts, the executor's report tap and `RateLimits`: workers'
reports arrive on executor threads and are queued here; `tick` (on the scheduler's thread) turns them into
`throttled` / `unthrottled` events, so every event is emitted from the one thread that emits.
"""

from __future__ import annotations

import queue as stdqueue
from collections.abc import Callable, Mapping
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.attempts import Running
from agent_runner.coordinator.holds import is_model_free
from agent_runner.coordinator.ratelimit import RateLimits, Transition, pool_of
from agent_runner.core.task import Task
from agent_runner.models.ratelimit import AttemptKey, RateSignal, ReportTap


class Throttle:
    """Holds back the tasks of a throttled provider and key; reports when throttling starts and ends."""

    def __init__(
        self, config: RunnerConfig, *, secrets: Mapping[str, str], emit: Callable[..., None]
    ) -> None:
        self.limits = RateLimits(config.rate_limits)
        self.secrets, self.emit = secrets, emit
        self._pools: dict[str | None, str | None] = {}  # model spec -> pool: asked per queued task
        self._started: stdqueue.SimpleQueue[Transition] = stdqueue.SimpleQueue()

    def listen(self, executor: Any) -> None:
        """Take the rate-limit reports of the executor's workers (an executor without a tap sends none)."""
        tap = getattr(executor, "reports", None)
        if isinstance(tap, ReportTap):
            tap.sink = self._report

    def _report(self, key: AttemptKey, signal: RateSignal) -> None:
        self.limits.observe(key, signal, self._started.put)

    def tick(self, running: Mapping[AttemptKey, Running]) -> None:
        """Tell the limits what runs now; emit the throttling that started or ended since the last tick."""
        self.limits.running({key: self.pool(run.model) for key, run in running.items()})
        while not self._started.empty():
            self._say(self._started.get())
        for transition in self.limits.transitions():
            self._say(transition)

    def admits(self, task: Task, model: str, running: Mapping[AttemptKey, Running]) -> bool:
        """Return whether `task` (on `model`) may start now; model-free tasks always may."""
        if is_model_free(task):
            return True
        pool = self.pool(model)
        n_in_flight = sum(1 for run in running.values() if self.pool(run.model) == pool)
        return self.limits.admits(pool, n_in_flight)

    def pool(self, model: str | None) -> str | None:
        """Return the pool of a model spec (None: not limited)."""
        if model not in self._pools:
            self._pools[model] = pool_of(model, self.secrets)
        return self._pools[model]

    def _say(self, transition: Transition) -> None:
        self.emit(transition.kind, message=transition.message)
