"""One attempt in flight: its record in the coordinator, and the thread that runs it and lands its commits."""

from __future__ import annotations

import queue as stdqueue
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from agent_runner.coordinator.landing import Landing, LandingRules, import_result
from agent_runner.core.protocols import Executor, Slot
from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.queue.store import Claim


@dataclass
class Running:
    """An attempt in flight."""

    claim: Claim
    task: Task
    slot: Slot
    model: str
    started: float
    last_beat: float


@dataclass
class Done:
    """What an attempt's thread hands back: a result or the error that ended it (neither: a wake-up)."""

    key: tuple[str, int]
    result: TaskResult | None = None
    error: BaseException | None = None
    landing: Future[Landing | None] | None = None  # an accepted result's commits, imported on its thread

    @property
    def is_landed(self) -> bool:
        """Whether the result's commits (if any) are in the repo, so it can be recorded now."""
        return self.landing is None or self.landing.done()


def run_attempt(
    executor: Executor,
    request: WorkRequest,
    slot: Slot,
    done: stdqueue.Queue[Done],
    *,
    root: Path,
    state_dir: Path,
    rules: LandingRules,
) -> None:
    """Run one attempt on `executor` and hand its end to `done`; then import an accepted result's commits."""
    key = (request.task.id, request.attempt)
    try:
        result = executor.run(request, slot)
    except BaseException as exc:  # every failure of an attempt's thread must reach the loop
        done.put(Done(key, error=exc))
        return
    landing: Future[Landing | None] = Future()
    if result.outcome != Outcome.ACCEPTED:
        landing.set_result(None)
    # The loop refills the slot at once; the commits come in here, in parallel with other results.
    done.put(Done(key, result=result, landing=landing))
    if landing.done():
        return
    landing.add_done_callback(lambda _: done.put(Done(key)))  # wakes the loop to record it
    try:
        landing.set_result(
            import_result(root, state_dir, request.task, result, rules=rules, base=request.base_commit)
        )
    except BaseException as exc:
        landing.set_exception(exc)


def take_done(done: stdqueue.Queue[Done], timeout: float) -> list[Done]:
    """Return the attempts that ended (waiting up to `timeout` for the first, or a landing's wake-up)."""
    found: list[Done] = []
    try:
        found.append(done.get(timeout=timeout) if timeout else done.get_nowait())
        while True:
            found.append(done.get_nowait())
    except stdqueue.Empty:
        return [item for item in found if item.result is not None or item.error is not None]
