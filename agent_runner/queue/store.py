"""The central queue: task operations as events appended to the queue file (see queue_log.py).

A claim is a lease on one attempt: heartbeats extend it, an expired one is re-granted with attempt + 1, and
writes for an attempt that is no longer live are refused (fencing). Task failures spend attempts up to the
task's `max_attempts`; infrastructure releases and expired leases do not, up to `max_infra`.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runner.core.errors import QueueError, StaleAttemptError
from agent_runner.core.task import Task, TaskStatus
from agent_runner.queue.log import CorruptLine, QueueLog
from agent_runner.queue.state import Event, EventType, TaskState, in_train_problem, is_expired, is_runnable

Accept = Callable[[TaskState], bool]
__all__ = ["Accept", "Claim", "CorruptLine", "Queue"]


@dataclass(frozen=True)
class Claim:
    """A granted lease on one attempt of a task."""

    task_id: str
    attempt: int
    state: TaskState


class Queue(QueueLog):
    """The queue file with its operations: add, claim, heartbeat, finish, fail, release, cancel, requeue."""

    def __init__(self, path: Path, *, max_infra: int = 5, clock: Callable[[], float] = time.time) -> None:
        super().__init__(path, clock=clock)
        self.max_infra = max_infra

    def add(self, task: Task, *, file: str | None = None, digest: str | None = None) -> bool:
        """Queue a task not seen before (or re-define a waiting or invalid one); return whether it did."""
        with self.locked() as states:
            if not _accepts_definition(states.get(task.id), digest):
                return False
            self._append(_queued_event(task, file, digest))
            return True

    def mark_invalid(self, task_id: str, file: str, reason: str) -> None:
        """Record that a task file is invalid (once per reason); a waiting task stops being runnable."""
        with self.locked() as states:
            state = states.get(task_id)
            waiting = state is not None and state.status == TaskStatus.QUEUED
            if state is None or waiting or (state.status == TaskStatus.INVALID and state.reason != reason):
                self._append(_event(EventType.INVALID, task_id, file=file, reason=reason))

    def claim(self, worker: str, *, lease_s: float, accept: Accept | None = None) -> Claim | None:
        """Atomically lease the highest-priority runnable task, or return None."""
        with self.locked() as states:
            now = self.clock()
            self._expire(states, now)
            live = [states[task_id] for task_id in self._live_ids]
            ok = [s for s in live if is_runnable(s, states, now) and (accept is None or accept(s))]
            if not ok:
                return None
            best = min(ok, key=lambda s: (-s.priority, s.seq))
            attempt = best.attempt + 1
            event = _event(EventType.CLAIMED, best.id, attempt=attempt, worker=worker)
            self._append({**event, "lease_until": round(now + lease_s, 3)})
            return Claim(best.id, attempt, states[best.id])

    @contextmanager
    def coordinator(self) -> Iterator[None]:
        """Hold the coordinator lock while a run lasts: one coordinator per queue file at a time."""
        path = self.path.with_name(self.path.name + ".coordinator")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise QueueError(
                    f"{self.path} is being run by {holder}; wait for that run to end (or stop it), then retry"
                ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"run-agents pid {os.getpid()} on {socket.gethostname()}\n")
            fh.flush()
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def release_orphans(self) -> list[str]:
        """Give back attempts a stopped coordinator left running (hold `coordinator()`); none is spent."""
        with self.locked() as states:
            orphans = [states[task_id] for task_id in self._live_ids if states[task_id].is_live]
            for state in orphans:
                reason = (
                    f"the coordinator running attempt {state.attempt} on {state.worker} stopped; runs again"
                )
                event = _event(EventType.RELEASED, state.id, attempt=state.attempt, infra=False, final=False)
                self._append({**event, "reason": reason})
            return [state.id for state in orphans]

    def _expire(self, states: dict[str, TaskState], now: float) -> None:
        for state in [states[task_id] for task_id in self._live_ids if is_expired(states[task_id], now)]:
            final = state.infra + 1 > self.max_infra
            reason = f"lease expired on {state.worker} (attempt {state.attempt})"
            reason += "; too many infrastructure failures" if final else ""
            event = _event(EventType.RELEASED, state.id, attempt=state.attempt, infra=True, final=final)
            self._append({**event, "reason": reason})

    def _live(self, states: dict[str, TaskState], task_id: str, attempt: int) -> TaskState:
        state = states.get(task_id)
        if state is None or state.status != TaskStatus.RUNNING or state.attempt != attempt:
            live = f"attempt {state.attempt} is {state.status}" if state else "the task is unknown"
            raise StaleAttemptError(f"{task_id}: attempt {attempt} is not live ({live}); result discarded")
        return state

    def check_live(self, task_id: str, attempt: int) -> None:
        """Raise StaleAttemptError unless the attempt is live (checked before acting on its result)."""
        with self.locked() as states:
            self._live(states, task_id, attempt)

    def heartbeat(self, task_id: str, attempt: int, *, lease_s: float) -> None:
        """Extend a live lease; raise StaleAttemptError when the attempt was re-granted."""
        with self.locked() as states:
            self._live(states, task_id, attempt)
            until = round(self.clock() + lease_s, 3)
            self._append(_event(EventType.HEARTBEAT, task_id, attempt=attempt, lease_until=until))

    def finish(self, task_id: str, attempt: int, result: dict[str, Any]) -> None:
        """Record an accepted result for a live attempt."""
        with self.locked() as states:
            self._live(states, task_id, attempt)
            self._append(_event(EventType.FINISHED, task_id, attempt=attempt, result=result))

    def fail(self, task_id: str, attempt: int, reason: str, *, result: dict[str, Any] | None = None) -> bool:
        """Record a task failure (spends an attempt); return whether the task is now failed for good."""
        with self.locked() as states:
            state = self._live(states, task_id, attempt)
            final = state.spent + 1 >= state.max_attempts
            if final:
                reason = f"{reason} (attempt {state.spent + 1} of {state.max_attempts})"
            event = _event(EventType.FAILED, task_id, attempt=attempt, reason=reason, final=final)
            self._append({**event, "result": result} if result is not None else event)
            return final

    def release(
        self,
        task_id: str,
        attempt: int,
        reason: str,
        *,
        infra: bool = True,
        backoff_s: float = 0.0,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Give a live attempt back without spending an attempt; return whether the task failed for good.

        The attempt's `result` record, if any, keeps what it spent in the task's cost.
        """
        with self.locked() as states:
            state = self._live(states, task_id, attempt)
            final = infra and state.infra + 1 > self.max_infra
            if final:
                reason = f"{reason}; gave up after {self.max_infra} infrastructure retries"
            not_before = round(self.clock() + backoff_s, 3) if backoff_s else 0
            event = _event(EventType.RELEASED, task_id, attempt=attempt, reason=reason, infra=infra)
            event.update(final=final, not_before=not_before)
            self._append({**event, "result": result} if result is not None else event)
            return final

    def cancel(self, task_id: str, reason: str = "cancelled by user") -> TaskState:
        """Cancel a task (a running attempt's late result will be rejected)."""
        with self.locked() as states:
            state = self._known(states, task_id)
            if state.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED):
                raise QueueError(f"{task_id} is already {state.status}; nothing to cancel")
            self._append(_event(EventType.CANCELLED, task_id, attempt=state.attempt, reason=reason))
            return states[task_id]

    def requeue(
        self, task_id: str, task: Task | None = None, *, file: str | None = None, digest: str | None = None
    ) -> TaskState:
        """Queue a task again with fresh attempt counters (optionally with a re-read definition)."""
        with self.locked() as states:
            state = self._known(states, task_id)
            if state.status == TaskStatus.RUNNING:
                raise QueueError(f"{task_id} is running (attempt {state.attempt}); cancel it first")
            if task is None and not state.has_definition:
                raise QueueError(f"{task_id} has no valid definition ({state.reason}); fix its task file")
            event: Event = {"type": EventType.REQUEUED, "task": task_id}
            if task is not None:
                event.update(_queued_event(task, file, digest), type=EventType.REQUEUED)
            self._append(event)
            return states[task_id]

    def note_waiting(self, task_ids: list[str], reason: str) -> None:
        """Record why these queued tasks did not start (a run's budget ran out); others are left alone."""
        with self.locked() as states:
            for task_id in task_ids:
                if task_id in states and states[task_id].status == TaskStatus.QUEUED:
                    self._append(_event(EventType.WAITING, task_id, reason=reason))

    def publish_event(self, task_id: str, *, pr_url: str | None = None, error: str | None = None) -> None:
        """Record the outcome of publishing a finished task."""
        with self.locked():
            if error is None:
                self._append(_event(EventType.PUBLISHED, task_id, pr_url=pr_url))
            else:
                self._append(_event(EventType.UNPUBLISHED, task_id, reason=error))

    def train_step(self, event: Event) -> TaskState:
        """Append a train step (train_landed or train_requeued); StaleAttemptError when the fold would refuse
        it (the task moved meanwhile, or this train already took it). Return the task's new state."""
        with self.locked() as states:
            problem = in_train_problem(self._known(states, event["task"]), event)
            if problem is not None:
                raise StaleAttemptError(problem)
            self._append(event)
            return states[event["task"]]

    def _known(self, states: dict[str, TaskState], task_id: str) -> TaskState:
        if task_id not in states:
            raise QueueError(f"no task '{task_id}' in {self.path}; `run-agents list` shows the known ids")
        return states[task_id]


def _accepts_definition(state: TaskState | None, digest: str | None) -> bool:
    """Whether a (new or edited) task file may (re-)define the task: not while running or once ended."""
    if state is None or not state.has_definition or state.status == TaskStatus.INVALID:
        return True
    return state.status == TaskStatus.QUEUED and state.digest != digest


def _event(kind: EventType, task_id: str, **fields: Any) -> Event:
    return {"type": kind, "task": task_id, **fields}


def _queued_event(task: Task, file: str | None, digest: str | None) -> Event:
    definition = task.model_dump(mode="json", exclude_defaults=True)
    definition.update(id=task.id, kind=task.kind.value)
    return {"type": EventType.QUEUED, "task": task.id, "def": definition, "file": file, "digest": digest}
