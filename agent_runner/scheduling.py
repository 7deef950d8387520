"""Scheduling rules shared by `run`, `watch` and `--dry-run`: events, summary, overlap, pending, plans."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent_runner.config import RunnerConfig
from agent_runner.intake import check_models, sync_tasks
from agent_runner.landing import source_repo
from agent_runner.protocols import Slot
from agent_runner.queue import Queue
from agent_runner.queue_state import TaskState
from agent_runner.result import TaskResult
from agent_runner.task import InvalidTask, Limits, Task, TaskKind, TaskStatus

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
        """0 when everything it ran finished, 1 when anything failed or stayed blocked, 130 on Ctrl-C."""
        if self.interrupted:
            return 130
        return 1 if self.failed or self.unpublished or self.blocked_models else 0

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


@dataclass(frozen=True)
class PlanRow:
    """One line of `run --dry-run`: where a task would run, with which model and limits, or why it waits."""

    task: str
    kind: str
    status: str
    worker: str | None
    model: str
    limits: dict[str, Any]
    note: str = ""


def plan(
    states: dict[str, TaskState],
    slots: list[Slot],
    *,
    config: RunnerConfig,
    only: frozenset[str] = frozenset(),
    model: str | None = None,
    now: float | None = None,
) -> list[PlanRow]:
    """Simulate one dispatch round without changing anything."""
    now = time.time() if now is None else now
    running = [s for s in states.values() if s.status == TaskStatus.RUNNING]
    busy = {s.worker for s in running}
    free = [slot for slot in slots if slot.name not in busy]
    taken: list[TaskState] = list(running)
    rows = [_row(s, config, model, s.worker, f"running (attempt {s.attempt})") for s in running]
    queued = sorted((s for s in states.values() if s.status == TaskStatus.QUEUED and s.task), key=_order)
    for state in queued:
        if only and state.id not in only:
            continue
        note = _waits(state, states, taken, now)
        slot = None if note else next((sl for sl in free if sl.accepts(state.task.get("machine"))), None)
        if not note and slot is None:
            pin = state.task.get("machine")
            fits = any(sl.accepts(pin) for sl in slots)
            note = "waits for a free worker" if fits else f"no worker matches machine '{pin}'"
        if slot is not None:
            free.remove(slot)
            taken.append(state)
        rows.append(_row(state, config, model, slot.name if slot else None, note or "would start now"))
    return rows


def _order(state: TaskState) -> tuple[int, int]:
    return (-state.priority, state.seq)


def _waits(state: TaskState, states: dict[str, TaskState], taken: list[TaskState], now: float) -> str:
    deps = [d for d in state.depends_on if states.get(d) is None or states[d].status not in DONE]
    if deps:
        return f"waits for {', '.join(deps)}"
    if state.not_before > now:
        return f"backing off for {state.not_before - now:.0f} s"
    paths = state.task.get("paths") or []
    for other in taken:
        if other.task.get("repo") == state.task.get("repo") and overlaps(
            paths, other.task.get("paths") or []
        ):
            return f"waits: paths overlap with {other.id}"
    return ""


def _row(state: TaskState, config: RunnerConfig, model: str | None, worker: str | None, note: str) -> PlanRow:
    kind = TaskKind(state.task.get("kind", "change"))
    limits = config.limits_for(kind, Limits.model_validate(state.task.get("limits") or {}))
    return PlanRow(
        task=state.id, kind=kind.value, status=state.status.value, worker=worker,
        model=model_for(state.task, model, config), limits=limits.model_dump(exclude_none=True), note=note,
    )  # fmt: skip


def preview_states(
    root: Path, config: RunnerConfig, queue: Queue
) -> tuple[dict[str, TaskState], list[InvalidTask]]:
    """Return the queue's states plus the unseen task files, and the invalid files; write nothing."""
    import copy

    from agent_runner.queue_state import EventType, apply
    from agent_runner.task import load_task_dir

    states = copy.deepcopy(queue.refresh())
    found = load_task_dir(config.path(root, "tasks_dir"), known={k for k, s in states.items() if s.task})
    check_models(found)
    seq = 10**9
    for task_id, task in found.tasks.items():
        if task_id in states and states[task_id].task:
            continue
        definition = {
            **task.model_dump(mode="json", exclude_defaults=True),
            "id": task.id,
            "kind": task.kind.value,
        }
        seq += 1
        apply(states, {"type": EventType.QUEUED, "task": task_id, "def": definition}, seq)
    return states, found.invalid


def invalid_rows(invalid: list[InvalidTask], *, only: frozenset[str] = frozenset()) -> list[PlanRow]:
    """Return `run --dry-run` lines for task files that would be reported and skipped."""
    return [
        PlanRow(bad.id, "-", "invalid", None, "-", {}, f"invalid, skipped: {bad.reason}")
        for bad in invalid
        if not only or bad.id in only
    ]


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
