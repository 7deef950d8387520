"""Budgets that pause: when a run's spend or time budget is reached, running attempts stop at their next
model call and come back queued, with no attempt spent; the tasks that did not start say why.

Each round of the loop the scheduler hands `BudgetWatch.check` the spend recorded so far and the attempts
in flight. The spend of an attempt in flight is read from its trajectory where the worker writes it on this
machine (local workers); an SSH or Ray attempt's spend counts once it ends, so there a new task's cost limit
must fit beside the running attempts' cost limits (the budget is never passed). Once a budget is reached, the
watch asks every running attempt to pause through its executor (`pause(task, attempt, reason)`: the pause
file of worker/pause.py, written where the worker runs) and remembers which it asked: the recorder honours
a PAUSED result only from those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from agent_runner.coordinator.budget import Budget, BudgetKind, BudgetStop
from agent_runner.core.protocols import Executor
from agent_runner.core.task import Task, TaskStatus
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue
from agent_runner.repo.layout import AttemptPaths
from agent_runner.worker.progress import TrajectoryProgress

Key = tuple[str, int]  # (task id, attempt number)
log = logging.getLogger(__name__)


@dataclass
class PauseLedger:
    """The attempts this run asked to pause (and why), and the tasks whose attempt came back paused."""

    asked: dict[Key, str] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)


class LiveSpend:
    """What the attempts in flight have spent so far, read incrementally from their trajectories here."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._progress: dict[Key, TrajectoryProgress] = {}

    def total(self, keys: Iterable[Key]) -> float:
        """Return the known spend of the attempts `keys` (each file read on from where it was last read)."""
        return sum(self._of(key).poll()[1] for key in set(keys))

    def _of(self, key: Key) -> TrajectoryProgress:
        if key not in self._progress:
            self._progress[key] = TrajectoryProgress(AttemptPaths.under(self.state_dir, *key).trajectory)
        return self._progress[key]


class BudgetWatch:
    """Stops a run at its budget: no new attempt, running ones paused at their next model call."""

    def __init__(
        self,
        budget: Budget,
        executor: Executor,
        *,
        state_dir: Path,
        emit: Callable[..., None],
        ledger: PauseLedger,
    ) -> None:
        self.budget, self.executor, self.emit = budget, executor, emit
        self.live = LiveSpend(state_dir)
        # the executor's workers write their trajectories where the coordinator reads them (local workers)
        self.is_spend_seen = bool(getattr(executor, "is_spend_seen", False))
        self.ledger = ledger  # shared with the recorder, which honours a PAUSED result only if asked
        self.stop: BudgetStop | None = None

    def spent(self, recorded: float, running: Iterable[Key]) -> float:
        """Return the run's spend so far: recorded attempts and what the running ones spent, where seen."""
        is_read = self.is_spend_seen and self.budget.config.budget_usd is not None  # no budget: no reading
        return recorded + (self.live.total(running) if is_read else 0.0)

    def committed(self, recorded: float, running: Iterable[tuple[Key, Task]]) -> float:
        """Return what a new task's cost limit must fit beside: the spend so far, and for attempts whose
        spend is not seen while they run (SSH, Ray) their whole cost limits, so the budget is never passed."""
        running = list(running)
        if self.is_spend_seen:
            return self.spent(recorded, [key for key, _ in running])
        return recorded + sum(self.budget.cap(task) for _, task in running)

    def check(self, recorded: float, running: list[Key]) -> None:
        """Stop the run if a budget is reached (pausing `running`) or nothing held back can fit any more."""
        if self.stop is not None:
            return
        spent = self.spent(recorded, running)
        if (kind := self.budget.reached(spent)) is not None:
            self._stop(kind, spent, running, is_reached=True)
        elif (kind := self.budget.exhausted(n_running=len(running))) is not None:
            self._stop(kind, spent, [], is_reached=False)

    def _stop(self, kind: BudgetKind, spent: float, running: list[Key], *, is_reached: bool) -> None:
        self.budget.hit = True
        message = self.budget.stop_message(kind, spent, is_reached=is_reached)
        self.stop = self.budget.stop_record(kind, spent, message)
        self.emit("budget", message=f"{message}; no new attempt starts")
        reason = f"{message}; go on: {self.stop.command}"
        asked = [key for key in running if self._pause(key, reason)]
        if asked:
            names = ", ".join(f"{task_id}#{attempt}" for task_id, attempt in asked)
            self.emit("pausing", message=f"{names} pause at their next model call (no attempt spent)")

    def _pause(self, key: Key, reason: str) -> bool:
        """Ask one attempt to pause; return whether it was asked (an executor may not offer it)."""
        pause = getattr(self.executor, "pause", None)  # optional: without it, running attempts end
        if not callable(pause):
            return False
        self.ledger.asked[key] = reason
        try:
            pause(*key, reason)
        except OSError as exc:  # the attempt then ends as it would have; its result is recorded as usual
            log.warning("cannot ask %s#%d to pause: %s", *key, exc)
            return False
        return True

    def finish(self, queue: Queue, states: Mapping[str, TaskState], in_scope: Iterable[str]) -> None:
        """Say why the queued tasks of this run's scope did not start, and count what is left to do."""
        if self.stop is None:
            return
        queued = [task_id for task_id in in_scope if states[task_id].status == TaskStatus.QUEUED]
        waiting = [task_id for task_id in queued if task_id not in self.ledger.paused]
        reason = f"waiting: {self.stop.message}; go on: {self.stop.command}"
        queue.note_waiting(waiting, reason)
        n_paused = sum(1 for task_id in queued if task_id in self.ledger.paused)
        self.stop = replace(self.stop, n_queued=len(queued), n_paused=n_paused)
