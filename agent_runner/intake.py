"""Intake: bring the task files of tasks/ into the queue (new ones queued, edited waiting ones re-defined)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config import RunnerConfig
from agent_runner.errors import TaskFileError
from agent_runner.models import spec_problem
from agent_runner.queue import Queue
from agent_runner.queue_state import TaskState
from agent_runner.sources import check_targets, require_repo, require_targets
from agent_runner.task import (
    TASK_SUFFIXES,
    InvalidTask,
    Task,
    TaskSet,
    TaskStatus,
    load_task_dir,
    load_task_file,
    render_task_file,
)


@dataclass
class SyncReport:
    """What one pass over the task folder did."""

    queued: list[str] = field(default_factory=list)
    redefined: list[str] = field(default_factory=list)
    invalid: list[InvalidTask] = field(default_factory=list)
    edited_after_start: list[str] = field(default_factory=list)
    n_unchanged: int = 0

    @property
    def n_changed(self) -> int:
        """How many tasks entered or changed in the queue."""
        return len(self.queued) + len(self.redefined)


def file_digest(path: Path) -> str:
    """Return the sha256 of a file's bytes (how the queue tells an edited task file)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_queue(root: Path, config: RunnerConfig) -> Queue:
    """Return the queue file configured for the repo at `root`."""
    return Queue(config.path(root, "queue"), max_infra=config.infra_retries)


def relative(root: Path, path: str | Path) -> str:
    """Return `path` relative to `root` when it is inside it (queue records stay portable)."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def sync_tasks(root: Path, config: RunnerConfig, queue: Queue) -> SyncReport:
    """Queue the task files the queue has not seen, re-define edited waiting ones, record invalid ones."""
    states = queue.refresh()
    found = load_task_dir(config.path(root, "tasks_dir"), known=_known_ids(states))
    check_models(found)
    check_targets(root, found, only=not_started(found, states))
    found.invalid = [_relative_invalid(root, bad) for bad in found.invalid]
    report = SyncReport(invalid=list(found.invalid))
    for task_id, task in found.tasks.items():
        _sync_one(root, queue, task, found.files[task_id], report)
    _record_invalid(queue, found)
    return report


def check_models(found: TaskSet) -> None:
    """Move the tasks whose `model` names no model (an unknown provider, say) to the invalid ones."""
    for task_id, task in list(found.tasks.items()):
        if task.model is not None and (problem := spec_problem(task.model)):
            file = found.files.pop(task_id)
            del found.tasks[task_id]
            found.invalid.append(InvalidTask(file, task_id, f"{file}: field 'model': {problem}"))


def not_started(found: TaskSet, states: dict[str, TaskState]) -> list[str]:
    """Return the ids of the found tasks that never ran (new, waiting or invalid in the queue)."""
    waiting = (TaskStatus.QUEUED, TaskStatus.INVALID)
    return [i for i in found.tasks if i not in states or states[i].status in waiting]


def _known_ids(states: dict[str, TaskState]) -> set[str]:
    return {task_id for task_id, state in states.items() if state.task}


def _sync_one(root: Path, queue: Queue, task: Task, file: str, report: SyncReport) -> None:
    digest = file_digest(Path(file))
    state = queue.states.get(task.id)
    if state is not None and state.digest == digest and state.status != TaskStatus.INVALID:
        report.n_unchanged += 1
    elif state is not None and state.task and state.status not in (TaskStatus.QUEUED, TaskStatus.INVALID):
        report.edited_after_start.append(task.id)  # `requeue` runs it again; a sync never does
    elif queue.add(task, file=relative(root, file), digest=digest):
        (report.redefined if state is not None and state.task else report.queued).append(task.id)
    else:
        report.n_unchanged += 1


def _relative_invalid(root: Path, bad: InvalidTask) -> InvalidTask:
    return InvalidTask(relative(root, bad.path), bad.id, bad.reason.replace(f"{root}{os.sep}", ""))


def _record_invalid(queue: Queue, found: TaskSet) -> None:
    for bad in found.invalid:
        if bad.id in found.tasks:
            continue  # a second file claiming a valid task's id: reported, but the valid task stays queued
        state = queue.states.get(bad.id)
        stale = state is not None and state.status == TaskStatus.INVALID and state.reason != bad.reason
        if state is None or state.status == TaskStatus.QUEUED or stale:
            queue.mark_invalid(bad.id, bad.path, bad.reason)


def slugify(text: str, *, max_len: int = 50) -> str:
    """Return a task id made from free text ('Clean lint in src/' -> 'clean-lint-in-src')."""
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    slug = ""
    for word in words:
        if len(slug) + len(word) + 1 > max_len:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or (words[0][:max_len] if words else "")


def add_task(root: Path, config: RunnerConfig, queue: Queue, task: Task) -> Path:
    """Write `task` as tasks/<id>.md and queue it; refuse outside a git repo, a taken id, unknown
    dependencies, and targets its base does not have."""
    require_repo(root)
    require_targets(root, task, source="run-agents add")
    folder = config.path(root, "tasks_dir")
    states = queue.refresh()
    found = load_task_dir(folder, known=_known_ids(states))
    taken = _id_owner(folder, found, states, task.id)
    if taken:
        raise TaskFileError(taken, f"id '{task.id}' is taken; pick another with --id", field="id")
    missing = [d for d in task.depends_on if d not in found.tasks and d not in _known_ids(states)]
    if missing:
        reason = f"unknown task(s) {', '.join(missing)}; `run-agents list` shows the ids"
        raise TaskFileError(str(folder / f"{task.id}.md"), reason, field="depends_on")
    path = folder / f"{task.id}.md"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(render_task_file(task))
    except FileExistsError as exc:  # another `add` won the race for this id
        raise TaskFileError(str(path), f"id '{task.id}' is taken; pick another", field="id") from exc
    load_task_file(path)  # the written file must read back as the same valid task
    queue.add(task, file=relative(root, path), digest=file_digest(path))
    return path


def _id_owner(folder: Path, found: TaskSet, states: dict[str, TaskState], task_id: str) -> str | None:
    """Return what already holds `task_id` (a file or the queue), or None."""
    if task_id in found.files:
        return found.files[task_id]
    for suffix in TASK_SUFFIXES:
        if (folder / f"{task_id}{suffix}").exists():
            return str(folder / f"{task_id}{suffix}")
    if task_id in states:
        return f"{queue_name(states[task_id])} in the queue"
    return None


def queue_name(state: TaskState) -> str:
    """Describe a queued task for messages ('task x (finished)')."""
    return f"task {state.id} ({state.status})"
