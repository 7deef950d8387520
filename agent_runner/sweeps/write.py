"""Writing a sweep's plan: task files whole or not at all, queued as `add` queues them.

A planned task whose id the queue has started (running, finished, failed, cancelled) is left alone; a
waiting one (queued, invalid) or one the queue has not seen is written when its file would change, and
(re-)queued. A file holding the id that no sweep wrote is kept. A waiting task of this sweep's kind that
the sweep no longer finds is reported stale and left as it is (`run-agents cancel` ends it).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.readiness import overlaps
from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import Task, TaskSet, load_task_dir, load_task_file, render_task_file
from agent_runner.core.task_io import write_new_file
from agent_runner.gates.ruff import in_paths
from agent_runner.queue.intake import WAITING, file_digest, relative
from agent_runner.queue.sources import require_repo
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue
from agent_runner.sweeps.plan import PlannedTask, SweepKind, SweepPlan, parallel_count

CANCEL_HINT = "the sweep no longer finds work for it; `run-agents cancel {id}` ends it"


class Outcome(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    LEFT_ALONE = "left alone"
    KEPT = "kept"
    STALE = "stale"


@dataclass(frozen=True)
class WriteRow:
    """What the sweep did (or, with --dry-run, would do) for one task id."""

    task_id: str
    outcome: Outcome
    status: str
    gain: int
    needs_model: bool
    paths: tuple[str, ...]
    title: str
    note: str = ""


def write_plan(
    root: Path, config: RunnerConfig, queue: Queue, plan: SweepPlan, *, dry_run: bool, started: float
) -> SweepReport:
    """Write (or with `dry_run` only judge) each planned task; report one row per task, then the stale ones.

    `started` is when the sweep began (time.perf_counter()), for the report's duration."""
    require_repo(root)
    folder = config.path(root, "tasks_dir")
    states = queue.refresh()
    found = load_task_dir(folder, known={i for i, s in states.items() if s.has_definition})
    plan = adopt_ids(plan, _waiting_ours(plan, found, states), taken={*found.tasks, *states})
    rows = [
        _one(root, folder, queue, states, found, planned, label=plan.kind.label, dry_run=dry_run)
        for planned in plan.tasks
    ]
    rows += _stale(plan, found, states)
    return SweepReport(plan, rows, time.perf_counter() - started, dry_run=dry_run)


def _one(
    root: Path, folder: Path, queue: Queue, states: dict[str, TaskState], found: TaskSet,
    planned: PlannedTask, *, label: str, dry_run: bool,
) -> WriteRow:  # fmt: skip
    task, state = planned.task, states.get(planned.task.id)
    if state is not None and state.has_definition and state.status not in WAITING:
        return _row(
            planned, Outcome.LEFT_ALONE, state.status, "started in the queue: a sweep leaves it alone"
        )
    status = state.status.value if state is not None else "new"
    file = Path(found.files.get(task.id) or folder / f"{task.id}.md")
    if (kept := _kept(found, task, file, label)) is not None:
        return _row(planned, Outcome.KEPT, status, kept)
    text = render_task_file(task)
    existing = found.tasks.get(task.id)
    if existing is not None and file.read_text(encoding="utf-8") == text:
        outcome = Outcome.UNCHANGED
    else:
        outcome = Outcome.UPDATED if existing is not None else Outcome.NEW
    if not dry_run and (raced := _write_and_queue(root, queue, task, file, text, outcome)) is not None:
        return _row(planned, Outcome.LEFT_ALONE, raced.status, "started while the sweep wrote it")
    return _row(planned, outcome, status)


def _write_and_queue(
    root: Path, queue: Queue, task: Task, file: Path, text: str, outcome: Outcome
) -> TaskState | None:
    """Write the task file (unless unchanged) and queue it; when a run started the task meanwhile, put the
    file it started from back and return the task's state (else None)."""
    old = file.read_text(encoding="utf-8") if outcome is Outcome.UPDATED else None
    if outcome is not Outcome.UNCHANGED:
        _write(file, text, replace=outcome is Outcome.UPDATED)
    digest = file_digest(file)
    if queue.add(task, file=relative(root, file), digest=digest):
        return None
    now = queue.refresh().get(task.id)
    if now is None or now.digest == digest:  # already queued as written (by a run's intake, or unchanged)
        return None
    if old is not None:
        _write(file, old, replace=True)
    return now


def _kept(found: TaskSet, task: Task, file: Path, label: str) -> str | None:
    """Say why the file for `task` must not be written (another owner holds it), or None."""
    existing = found.tasks.get(task.id)
    if existing is not None and label not in existing.labels:
        return f"{file.name} holds this id and no sweep wrote it"
    if existing is None and (file.exists() or file.is_symlink()):
        return f"{file.name} exists but is not a valid task of this id; fix or remove it"
    return None


def _write(file: Path, text: str, *, replace: bool) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_new_file(file, text, replace=replace)  # whole or not at all
    except FileExistsError as exc:  # an `add` or another sweep won the race for this id
        raise TaskFileError(str(file), "appeared while the sweep wrote it; sweep again") from exc
    except OSError as exc:
        hint = "the file was not written; free some space and sweep again (written tasks stay)"
        raise TaskFileError(str(file), f"cannot be written: {exc.strerror or exc}; {hint}") from exc
    load_task_file(file)  # it must read back as a valid task


def _waiting_ours(plan: SweepPlan, found: TaskSet, states: dict[str, TaskState]) -> list[Task]:
    """Return the waiting tasks of this sweep's kind and scope that the plan does not name."""
    if plan.kind is SweepKind.ISSUES:  # another label's sweep may have made them: not ours to judge
        return []
    planned = {p.task.id for p in plan.tasks}
    tasks = []
    for task_id, task in sorted(found.tasks.items()):
        state = states.get(task_id)
        is_waiting = state is None or state.status in WAITING
        is_ours = plan.kind.label in task.labels and all(in_paths(p, plan.scope) for p in task.paths)
        if is_ours and is_waiting and task_id not in planned and task.paths:
            tasks.append(task)
    return tasks


def adopt_ids(plan: SweepPlan, waiting: list[Task], *, taken: set[str]) -> SweepPlan:
    """Return the plan with each new task that overlaps a waiting task of an earlier sweep renamed to it.

    Groups change as debt is paid (a folder's shared task down to one file): the waiting task is updated
    instead of left beside a new one doing the same work. Only a task whose id is not `taken` (by a task
    file or the queue) is renamed, and each waiting task is adopted once, in plan order.
    """
    tasks = list(plan.tasks)
    for old in waiting:
        index = next(
            (i for i, p in enumerate(tasks) if p.task.id not in taken and overlaps(p.task.paths, old.paths)),
            None,
        )
        if index is not None:
            tasks[index] = replace(tasks[index], task=tasks[index].task.model_copy(update={"id": old.id}))
            taken = taken | {old.id}
    return replace(plan, tasks=tuple(tasks))


def _stale(plan: SweepPlan, found: TaskSet, states: dict[str, TaskState]) -> list[WriteRow]:
    rows = []
    for task in _waiting_ours(plan, found, states):
        state = states.get(task.id)
        status = state.status.value if state is not None else "new"
        rows.append(
            _row(PlannedTask(task, task.id, 0), Outcome.STALE, status, CANCEL_HINT.format(id=task.id))
        )
    return rows


def _row(planned: PlannedTask, outcome: Outcome, status: str, note: str = "") -> WriteRow:
    task = planned.task
    return WriteRow(
        task.id,
        outcome,
        status,
        planned.gain,
        planned.needs_model,
        tuple(task.paths),
        task.display_title,
        note,
    )


ACTIVE = (Outcome.NEW, Outcome.UPDATED, Outcome.UNCHANGED)  # the rows whose task waits in the queue now


@dataclass(frozen=True)
class SweepReport:
    """A sweep's plan, what became of each task, and how long the sweep took."""

    plan: SweepPlan
    rows: list[WriteRow]
    seconds: float
    dry_run: bool = False

    @property
    def active(self) -> list[Task]:
        """The planned tasks that wait in the queue after this sweep (not left alone, not kept)."""
        ids = {row.task_id for row in self.rows if row.outcome in ACTIVE}
        return [p.task for p in self.plan.tasks if p.task.id in ids]

    @property
    def n_parallel(self) -> int:
        """How many of the waiting tasks can run at once (no two with overlapping paths)."""
        return parallel_count(self.active)

    @property
    def n_model_free(self) -> int:
        """How many of the waiting tasks ruff alone may finish."""
        free = {p.task.id for p in self.plan.tasks if not p.needs_model}
        return sum(task.id in free for task in self.active)

    def counts(self) -> dict[str, int]:
        """Return how many rows had each outcome (only those that occurred)."""
        found = Counter(row.outcome.value for row in self.rows)
        return {outcome.value: found[outcome.value] for outcome in Outcome if found[outcome.value]}

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain data for `--json`."""
        return {
            "sweep": self.plan.kind.value, "dry_run": self.dry_run, "seconds": round(self.seconds, 2),
            "n_tasks": len(self.plan.tasks), "n_parallel": self.n_parallel, "n_model_free": self.n_model_free,
            "counts": self.counts(), "figures": self.plan.figures, "notes": list(self.plan.notes),
            "tasks": [{**asdict(r), "outcome": r.outcome.value, "paths": list(r.paths)} for r in self.rows],
        }  # fmt: skip
