"""`run --dry-run` and the Actions matrix: one dispatch round simulated over the queue, changing nothing."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.holds import is_model_free
from agent_runner.coordinator.options import model_for
from agent_runner.coordinator.readiness import DONE, Footprints, Overlap
from agent_runner.core.protocols import Slot
from agent_runner.core.task import InvalidTask, Limits, TaskKind, TaskStatus, load_task_dir
from agent_runner.queue.intake import check_branches, check_models, not_started
from agent_runner.queue.sources import check_targets
from agent_runner.queue.state import EventType, TaskState, apply
from agent_runner.queue.store import Queue

HoldCheck = Callable[[str], str | None]  # a model spec -> why no attempt could call it here, or None


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
    model_problem: HoldCheck | None = None,
    root: Path | None = None,
) -> list[PlanRow]:
    """Simulate one dispatch round without changing anything; `model_problem` holds tasks as `run` does.

    With `root`, overlaps also count the files each task's landed commit changed (see readiness.py).
    """
    now = time.time() if now is None else now
    footprints = Footprints(root)
    running = [s for s in states.values() if s.status == TaskStatus.RUNNING]
    busy = {s.worker for s in running}
    free = [slot for slot in slots if slot.name not in busy]
    taken: list[TaskState] = list(running)
    rows = [_row(s, config, model, s.worker, f"running (attempt {s.attempt})") for s in running]
    queued = sorted(
        (s for s in states.values() if s.status == TaskStatus.QUEUED and s.has_definition), key=_order
    )
    for state in queued:
        if only and state.id not in only:
            continue
        problem = model_problem(model_for(state.task, model, config)) if model_problem else None
        note = _held(state, problem) or _waits(state, states, taken, now, footprints)
        pin = state.task.machine if state.task is not None else None
        slot = None if note else next((sl for sl in free if sl.accepts(pin)), None)
        if not note and slot is None:
            fits = any(sl.accepts(pin) for sl in slots)
            note = "waits for a free worker" if fits else f"no worker matches machine '{pin}'"
        if slot is not None:
            free.remove(slot)
            taken.append(state)
        start = f"would start now: ruff --fix only, held if violations remain ({problem})" if problem else ""
        worker = slot.name if slot else None
        rows.append(_row(state, config, model, worker, note or start or "would start now"))
    return rows


def _held(state: TaskState, problem: str | None) -> str:
    """Say why a task is held (its model cannot be called here), unless ruff alone may finish it."""
    return f"held: {problem}" if problem and not is_model_free(state.task) else ""


def _order(state: TaskState) -> tuple[int, int]:
    return (-state.priority, state.seq)


def _waits(
    state: TaskState, states: dict[str, TaskState], taken: list[TaskState], now: float, footprints: Footprints
) -> str:
    deps = [d for d in state.depends_on if states.get(d) is None or states[d].status not in DONE]
    if deps:
        return f"waits for {', '.join(deps)}"
    if state.not_before > now:
        return f"backing off for {state.not_before - now:.0f} s"
    mine = footprints.of_state(state)
    for other in taken:
        theirs = footprints.of_state(other)
        if mine is None or theirs is None:
            continue  # a definition that is no valid Task: the scheduler fails it when it comes up
        if (overlap := mine.overlap(theirs)) is not Overlap.NONE:
            return f"waits: {overlap} with {other.id}"
    return ""


def _row(state: TaskState, config: RunnerConfig, model: str | None, worker: str | None, note: str) -> PlanRow:
    task = state.task
    kind = task.kind if task is not None else TaskKind.CHANGE
    limits = config.limits_for(kind, task.limits if task is not None else Limits())
    return PlanRow(
        task=state.id, kind=kind.value, status=state.status.value, worker=worker,
        model=model_for(state.task, model, config), limits=limits.model_dump(exclude_none=True), note=note,
    )  # fmt: skip


def preview_states(
    root: Path, config: RunnerConfig, queue: Queue
) -> tuple[dict[str, TaskState], list[InvalidTask]]:
    """Return the queue's states plus the unseen task files, and the invalid files; write nothing."""
    states = copy.deepcopy(queue.refresh())
    found = load_task_dir(
        config.path(root, "tasks_dir"), known={k for k, s in states.items() if s.has_definition}
    )
    check_models(found)
    check_branches(found, states)
    check_targets(root, found, only=not_started(found, states))
    seq = 10**9
    for task_id, task in found.tasks.items():
        if task_id in states and states[task_id].has_definition:
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
