"""Which queued tasks can run: dependencies done, machine accepted, paths not overlapping; per-base counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

from agent_runner.coordinator.landing import source_repo
from agent_runner.core.protocols import Slot
from agent_runner.core.task import TaskStatus
from agent_runner.queue.state import TaskState

DONE = (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)


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
    if (
        state.status != TaskStatus.QUEUED
        or not state.has_definition
        or not in_scope(state)
        or state.id in seen
    ):
        return False
    machine = state.task.machine if state.task is not None else None
    if not any(slot.accepts(machine) for slot in slots):
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


def queued_by_base(
    root: Path, states: dict[str, TaskState], in_scope: Callable[[TaskState], bool]
) -> dict[tuple[str, str | None], int]:
    """Count the queued tasks in scope per (source repo, base branch)."""
    counts: dict[tuple[str, str | None], int] = {}
    for state in states.values():
        if state.status == TaskStatus.QUEUED and state.has_definition and in_scope(state):
            if state.task is None:
                continue  # the scheduler fails it when it comes up
            key = (source_repo(root, state.task), state.task.base)
            counts[key] = counts.get(key, 0) + 1
    return counts
