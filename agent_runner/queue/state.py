"""Queue events and the fold that turns them into the state of every task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from agent_runner.core.cost import CostTotal, result_cost
from agent_runner.core.result import TaskResult
from agent_runner.core.task import Task, TaskStatus

Event = dict[str, Any]  # a decoded queue line, shaped as schema.py checks before the fold reads it


class EventType(StrEnum):
    QUEUED = "queued"
    INVALID = "invalid"
    CLAIMED = "claimed"
    HEARTBEAT = "heartbeat"
    RELEASED = "released"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REQUEUED = "requeued"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"
    WAITING = "waiting"  # why a queued task did not start (a run's budget ran out): a note, nothing else
    SNAPSHOT = "snapshot"
    TRAIN_LANDED = "train_landed"
    TRAIN_REQUEUED = "train_requeued"


@dataclass
class TaskState:
    """The state of one task, folded from its events."""

    id: str
    status: TaskStatus = TaskStatus.QUEUED
    task_json: dict[str, Any] = field(
        default_factory=dict
    )  # the definition as queued; `task` is it validated
    file: str | None = None
    digest: str | None = None
    priority: int = 0
    depends_on: list[str] = field(default_factory=list)
    max_attempts: int = 3
    attempt: int = 0
    spent: int = 0
    infra: int = 0
    worker: str | None = None
    lease_until: float | None = None
    not_before: float = 0.0
    reason: str = ""
    result_json: dict[str, Any] | None = None  # the last attempt's result as stored; `result` is it validated
    pr_url: str | None = None
    cost_usd: float = 0.0  # the known part of what its attempts spent
    n_unknown_cost: int = 0  # attempts whose cost is unknown (a model with no price)
    claimed_at: float | None = None
    seq: int = 0
    train: str | None = None  # the integration train its result landed in (coordinator/train.py)
    train_commit: str | None = None  # the result's commit on that train's integration branch
    # Validated lazily, once per definition or result: validating all 10,000 of bench/queue_bench.py would
    # add 45 ms (15%) to a cold fold, and most readers look at few. `_checked_*`: the JSON last validated.
    _checked_task: object = field(default=None, init=False, repr=False, compare=False)
    _task: Task | None = field(default=None, init=False, repr=False, compare=False)
    _task_problem: str = field(default="", init=False, repr=False, compare=False)
    _checked_result: object = field(default=None, init=False, repr=False, compare=False)
    _result: TaskResult | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def task(self) -> Task | None:
        """The task as queued; None when there is no definition or it is not a valid Task."""
        if self._checked_task is not self.task_json:
            self._task, self._task_problem = _validated_task(self.task_json)
            self._checked_task = self.task_json
        return self._task

    @property
    def has_definition(self) -> bool:
        """Whether a definition was queued (valid or not): the task may be claimed, and fails if invalid."""
        return bool(self.task_json)

    @property
    def task_problem(self) -> str:
        """Why the queued definition is not a valid Task ("" when it is, or when there is none)."""
        self.task  # noqa: B018 -- validates (once) and notes the problem
        return self._task_problem

    @property
    def result(self) -> TaskResult | None:
        """The last attempt's result; None when there is none or it is not a whole TaskResult."""
        if self._checked_result is not self.result_json:
            self._result = _validated_result(self.result_json)
            self._checked_result = self.result_json
        return self._result

    @property
    def is_live(self) -> bool:
        """Whether an attempt is running under a lease."""
        return self.status == TaskStatus.RUNNING

    @property
    def n_attempts_used(self) -> int:
        """Attempts counted against `max_attempts`: the failed ones, plus the running or accepted one.

        Re-runs after infrastructure failures and interrupted attempts are not counted, so this is not
        `attempt` (the number of the latest attempt, which counts them too).
        """
        has_current = self.status in (TaskStatus.RUNNING, TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)
        return self.spent + (1 if has_current and self.attempt else 0)

    @property
    def cost(self) -> CostTotal:
        """What its attempts spent: the known part and how many were of unknown cost."""
        return CostTotal(self.cost_usd, self.n_unknown_cost)

    def to_json(self) -> dict[str, Any]:
        """Return the state as a JSON-ready mapping (for `list --json` and snapshots)."""
        data = {_JSON_KEYS.get(name, name): getattr(self, name) for name in _JSON_FIELDS}
        data["status"] = self.status.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskState:
        """Rebuild a state from `to_json` output."""
        renamed = {_JSON_NAMES.get(k, k): v for k, v in data.items()}
        known = {k: v for k, v in renamed.items() if k in _JSON_FIELDS}
        known["status"] = TaskStatus(known.get("status", "queued"))
        return cls(**known)


_JSON_FIELDS = tuple(name for name in TaskState.__dataclass_fields__ if not name.startswith("_"))
_JSON_KEYS = {"task_json": "task", "result_json": "result"}  # their names in snapshots and `list --json`
_JSON_NAMES = {key: name for name, key in _JSON_KEYS.items()}


def _validated_task(definition: dict[str, Any]) -> tuple[Task | None, str]:
    if not definition:
        return None, ""
    try:
        return Task.model_validate(definition), ""
    except ValidationError as exc:
        return None, str(exc)


def _validated_result(record: dict[str, Any] | None) -> TaskResult | None:
    if record is None:
        return None
    try:
        return TaskResult.model_validate(record)
    except ValidationError:
        return None  # a partial record (older runners, hand-written lines): readers use result_json


def apply(states: dict[str, TaskState], event: Event, seq: int) -> str | None:
    """Fold one event (shaped as queue_schema says) into `states`; return why it was refused, or None."""
    kind, task_id = event["type"], event["task"]
    if kind == EventType.SNAPSHOT:
        states[task_id] = TaskState.from_json(event["state"])
        return None
    state = states.get(task_id)
    if state is None:
        if kind not in _CREATING:
            return f"{kind} event for unknown task '{task_id}'"
        state = states[task_id] = TaskState(id=task_id, seq=seq)
    guard = _GUARDS.get(kind)
    refusal = guard(state, event) if guard is not None else None
    if refusal is None:
        _HANDLERS[kind](state, event)
    return refusal


def _claimable(state: TaskState, event: Event) -> str | None:
    if state.status != TaskStatus.QUEUED:
        return f"claimed event for '{state.id}', which is {state.status}"
    if event["attempt"] <= state.attempt:
        return f"claimed event for attempt {event['attempt']} of '{state.id}', after attempt {state.attempt}"
    return None


def _live_attempt(state: TaskState, event: Event) -> str | None:
    kind = event["type"]
    if state.status != TaskStatus.RUNNING:
        return f"{kind} event for '{state.id}', which is {state.status}"
    attempt = event.get("attempt", state.attempt)
    if attempt != state.attempt:
        return f"{kind} event for attempt {attempt} of '{state.id}', which runs attempt {state.attempt}"
    return None


def in_train_problem(state: TaskState, event: Event) -> str | None:
    """A train acts on the accepted result of the task's last attempt, once per train."""
    kind = event["type"]
    if state.status not in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED):
        return f"{kind} event for '{state.id}', which is {state.status}"
    if event["attempt"] != state.attempt:
        attempt = event["attempt"]
        return f"{kind} event for attempt {attempt} of '{state.id}', whose last result is of {state.attempt}"
    if state.train == event["train"]:
        return f"{kind} event for '{state.id}', already landed in {event['train']}"
    return None


def _cancellable(state: TaskState, event: Event) -> str | None:
    if state.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED):
        return f"cancelled event for '{state.id}', which is {state.status}"
    return None


def _requeueable(state: TaskState, event: Event) -> str | None:
    if state.status == TaskStatus.RUNNING:
        return f"requeued event for '{state.id}', which is running attempt {state.attempt}"
    return None


def _queued(state: TaskState, event: Event) -> None:
    definition = event.get("def") or {}
    state.task_json = definition
    state.file = event.get("file")
    state.digest = event.get("digest")
    state.priority = int(definition.get("priority", 0))
    state.depends_on = list(definition.get("depends_on", []))
    state.max_attempts = int(definition.get("max_attempts", 3))
    if state.status in (TaskStatus.QUEUED, TaskStatus.INVALID):
        state.status = TaskStatus.QUEUED
        state.reason = ""


def _invalid(state: TaskState, event: Event) -> None:
    if state.status in (TaskStatus.QUEUED, TaskStatus.INVALID):  # a running or ended task keeps its status
        state.status = TaskStatus.INVALID
        state.file = event.get("file")
        state.reason = event.get("reason", "")


def _claimed(state: TaskState, event: Event) -> None:
    state.status = TaskStatus.RUNNING
    state.attempt = event["attempt"]
    state.worker = event.get("worker")
    state.lease_until = event.get("lease_until")
    state.claimed_at = event.get("ts")
    state.reason = ""


def _heartbeat(state: TaskState, event: Event) -> None:
    if state.status == TaskStatus.RUNNING and event.get("attempt") == state.attempt:
        state.lease_until = event.get("lease_until")


def _released(state: TaskState, event: Event) -> None:
    state.infra += 1 if event.get("infra", True) else 0
    state.not_before = float(event.get("not_before") or 0.0)
    _end_attempt(state, event, TaskStatus.FAILED if event.get("final") else TaskStatus.QUEUED)


def _finished(state: TaskState, event: Event) -> None:
    _end_attempt(state, event, TaskStatus.FINISHED)
    state.train = state.train_commit = None
    state.pr_url = (event.get("result") or {}).get("pr_url") or state.pr_url


def _failed(state: TaskState, event: Event) -> None:
    state.spent += 1
    _end_attempt(state, event, TaskStatus.FAILED if event.get("final") else TaskStatus.QUEUED)


def _end_attempt(state: TaskState, event: Event, status: TaskStatus) -> None:
    state.status = status
    state.lease_until = None
    state.reason = event.get("reason", "")
    result = event.get("result")
    if result is not None:
        state.result_json = result
        cost = result_cost(result)
        if cost is None:
            state.n_unknown_cost += 1
        else:
            state.cost_usd += cost


def _cancelled(state: TaskState, event: Event) -> None:
    state.status = TaskStatus.CANCELLED
    state.lease_until = None
    state.reason = event.get("reason", "cancelled")


def _requeued(state: TaskState, event: Event) -> None:
    if event.get("def"):
        _queued(state, event)
    state.status = TaskStatus.QUEUED
    state.spent = state.infra = 0
    state.not_before = 0.0
    state.lease_until = None
    state.reason = ""
    state.result_json = None
    state.pr_url = None
    state.train = state.train_commit = None


def _train_landed(state: TaskState, event: Event) -> None:
    state.train, state.train_commit = event["train"], event["commit"]


def _train_requeued(state: TaskState, event: Event) -> None:
    """The one move from finished back to queued: the task did its part (no attempt spent, counters kept);
    its next attempt starts on the integration head, told why (the new definition says both)."""
    if event.get("def"):
        _queued(state, event)
    state.status = TaskStatus.QUEUED
    state.reason = event.get("reason", "")
    state.lease_until = None
    state.train = state.train_commit = None


def _published(state: TaskState, event: Event) -> None:
    state.pr_url = event.get("pr_url") or state.pr_url
    if state.status == TaskStatus.UNPUBLISHED:
        state.status = TaskStatus.FINISHED
        state.reason = ""


def _unpublished(state: TaskState, event: Event) -> None:
    if state.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED):
        state.status = TaskStatus.UNPUBLISHED
        state.reason = event.get("reason", "")


def _waiting(state: TaskState, event: Event) -> None:
    if state.status == TaskStatus.QUEUED:
        state.reason = event.get("reason", "")


_HANDLERS: dict[str, Callable[[TaskState, Event], None]] = {
    EventType.QUEUED: _queued,
    EventType.INVALID: _invalid,
    EventType.CLAIMED: _claimed,
    EventType.HEARTBEAT: _heartbeat,
    EventType.RELEASED: _released,
    EventType.FINISHED: _finished,
    EventType.FAILED: _failed,
    EventType.CANCELLED: _cancelled,
    EventType.REQUEUED: _requeued,
    EventType.PUBLISHED: _published,
    EventType.UNPUBLISHED: _unpublished,
    EventType.WAITING: _waiting,
    EventType.TRAIN_LANDED: _train_landed,
    EventType.TRAIN_REQUEUED: _train_requeued,
}


_CREATING = frozenset({EventType.QUEUED, EventType.INVALID})  # what a task's first event may be
# The attempt's lifecycle moves only as queue.py's guarded writers move it; a line that moves it otherwise (a
# stale claim, a second `finished`, a bad merge) is refused. Bookkeeping events (queued, invalid, published,
# unpublished, waiting) are never refused: their handlers already ignore what does not apply.
_GUARDS: dict[str, Callable[[TaskState, Event], str | None]] = {
    EventType.CLAIMED: _claimable,
    EventType.HEARTBEAT: _live_attempt,
    EventType.RELEASED: _live_attempt,
    EventType.FINISHED: _live_attempt,
    EventType.FAILED: _live_attempt,
    EventType.CANCELLED: _cancellable,
    EventType.REQUEUED: _requeueable,
    EventType.TRAIN_LANDED: in_train_problem,
    EventType.TRAIN_REQUEUED: in_train_problem,
}


def is_runnable(state: TaskState, states: dict[str, TaskState], now: float) -> bool:
    """Return whether a task may be claimed now (queued, back-off over, dependencies finished)."""
    if state.status != TaskStatus.QUEUED or state.not_before > now or not state.task_json:
        return False
    return all(_dep_done(states.get(dep)) for dep in state.depends_on)


def _dep_done(dep: TaskState | None) -> bool:
    return dep is not None and dep.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)


def is_expired(state: TaskState, now: float) -> bool:
    """Return whether a running attempt's lease has run out."""
    return state.status == TaskStatus.RUNNING and (state.lease_until or 0.0) < now
