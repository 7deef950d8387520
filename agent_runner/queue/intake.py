"""Intake: bring the task files of tasks/ into the queue (new ones queued, edited waiting ones re-defined)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import (
    MAX_TASK_FILE_BYTES,
    TASK_SUFFIXES,
    InvalidTask,
    Task,
    TaskSet,
    TaskStatus,
    load_task_dir,
    load_task_file,
    render_task_file,
)
from agent_runner.core.task_io import read_task_bytes, write_new_file
from agent_runner.models import spec_problem
from agent_runner.queue.sources import check_targets, require_repo, require_targets
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue


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
    """Return the sha256 of a task file's bytes (how the queue tells an edited task file)."""
    return hashlib.sha256(read_task_bytes(path, limit=MAX_TASK_FILE_BYTES)[0]).hexdigest()


def open_queue(root: Path, config: RunnerConfig) -> Queue:
    """Return the queue file configured for the repo at `root`."""
    return Queue(config.path(root, "queue"), max_infra=config.infra_retries)


def relative(root: Path, path: str | Path) -> str:
    """Return `path` relative to `root` when it is inside it (queue records stay portable)."""
    try:
        where = Path(path).parent.resolve() / Path(path).name  # a linked task file: named, not followed
        return str(where.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def sync_tasks(root: Path, config: RunnerConfig, queue: Queue) -> SyncReport:
    """Queue the task files the queue has not seen, re-define edited waiting ones, record invalid ones."""
    states = queue.refresh()
    found = load_task_dir(config.path(root, "tasks_dir"), known=_known_ids(states))
    check_models(found)
    check_branches(found, states)
    check_targets(root, found, only=not_started(found, states))
    found.invalid = [_relative_invalid(root, bad) for bad in found.invalid]
    report = SyncReport(invalid=list(found.invalid))
    for task_id, task in list(found.tasks.items()):
        try:
            _sync_one(root, queue, task, found.files[task_id], report)
        except TaskFileError as exc:  # replaced since it was read (by a FIFO, say): reported, never waited on
            _drop(found, task_id, str(exc))
            found.invalid[-1] = _relative_invalid(root, found.invalid[-1])
            report.invalid.append(found.invalid[-1])
    _record_invalid(queue, found)
    return report


def check_models(found: TaskSet) -> None:
    """Move the tasks whose `model` names no model (an unknown provider, say) to the invalid ones."""
    for task_id, task in list(found.tasks.items()):
        if task.model is not None and (problem := spec_problem(task.model)):
            _drop(found, task_id, f"{found.files[task_id]}: field 'model': {problem}")


def check_branches(found: TaskSet, states: dict[str, TaskState]) -> BranchHolders:
    """Move the tasks whose branch another task holds to the invalid ones (the message names both).

    Two tasks landing on one branch would leave one's commit on no branch, and git cannot keep agent/a
    beside agent/a/b. A task the queue has started keeps its branch, then the first file in name order; a
    task that builds on its branch (`base` is its `branch`, as a review's fix task) may share it. Returns
    who holds each branch now.
    """
    holders = BranchHolders()
    for task_id, state in states.items():
        queued = state.task if task_id not in found.tasks and state.status not in RELEASED else None
        if queued is not None and queued.base != queued.branch_name:
            holders.claim(queued.branch_name, f"{queue_name(state)} in the queue")
    for task_id in sorted(found.tasks, key=lambda i: (not _started(states.get(i)), found.files[i])):
        task, file = found.tasks[task_id], found.files[task_id]
        if task.base == task.branch_name:
            continue
        if clash := holders.clash(task.branch_name):
            _drop(found, task_id, f"{file}: field 'branch': {clash}; {BRANCH_HINT}")
        else:
            holders.claim(task.branch_name, file)
    return holders


RELEASED = (TaskStatus.INVALID, TaskStatus.CANCELLED)  # tasks that hold no branch
WAITING = (TaskStatus.QUEUED, TaskStatus.INVALID)  # tasks whose file may still redefine them
BRANCH_HINT = "give each task its own branch (without `branch:` a task works on agent/<id>)"


class BranchHolders:
    """Which task holds each branch, and the folders those branches make in git's ref store."""

    def __init__(self) -> None:
        self.branches: dict[str, str] = {}
        self.folders: dict[str, str] = {}  # 'agent/a' -> 'agent/a/b' when agent/a/b is held

    def claim(self, branch: str, holder: str) -> None:
        """Record that `holder` (a file, or a task in the queue) works on `branch`."""
        self.branches[branch] = holder
        for folder in _folders(branch):
            self.folders.setdefault(folder, branch)

    def clash(self, branch: str) -> str | None:
        """Say which held branch `branch` cannot live beside, or None."""
        if branch in self.branches:
            return f"'{branch}' is already the branch of {self.branches[branch]}"
        other = self.folders.get(branch) or next((f for f in _folders(branch) if f in self.branches), None)
        if other is None:
            return None
        holder = self.branches[other]
        return f"'{branch}' cannot exist beside '{other}', the branch of {holder} (git nests one in another)"


def _folders(branch: str) -> list[str]:
    parts = branch.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


def _started(state: TaskState | None) -> bool:
    return state is not None and state.status not in (TaskStatus.QUEUED, TaskStatus.INVALID)


def _drop(found: TaskSet, task_id: str, reason: str) -> None:
    """Move a found task to the invalid ones with `reason` (which starts with its file)."""
    file = found.files.pop(task_id)
    del found.tasks[task_id]
    found.invalid.append(InvalidTask(file, task_id, reason))


def not_started(found: TaskSet, states: dict[str, TaskState]) -> list[str]:
    """Return the ids of the found tasks that never ran (new, waiting or invalid in the queue)."""
    return [i for i in found.tasks if i not in states or states[i].status in WAITING]


def _known_ids(states: dict[str, TaskState]) -> set[str]:
    return {task_id for task_id, state in states.items() if state.has_definition}


def _sync_one(root: Path, queue: Queue, task: Task, file: str, report: SyncReport) -> None:
    digest = file_digest(Path(file))
    state = queue.states.get(task.id)
    if state is not None and state.digest == digest and state.status != TaskStatus.INVALID:
        report.n_unchanged += 1
    elif state is not None and state.has_definition and state.status not in WAITING:
        report.edited_after_start.append(task.id)  # `requeue` runs it again; a sync never does
    elif queue.add(task, file=relative(root, file), digest=digest):
        (report.redefined if state is not None and state.has_definition else report.queued).append(task.id)
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
    _require_branch(found, states, task, path)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        write_new_file(path, render_task_file(task))
    except FileExistsError as exc:  # another `add` won the race for this id
        raise TaskFileError(str(path), f"id '{task.id}' is taken; pick another", field="id") from exc
    except OSError as exc:  # a full disk, say: the file was not created, and nothing is queued
        hint = "nothing was written or queued; free some space and run the command again"
        raise TaskFileError(str(path), f"cannot be written: {exc.strerror or exc}; {hint}") from exc
    load_task_file(path)  # the written file must read back as the same valid task
    queue.add(task, file=relative(root, path), digest=file_digest(path))
    return path


def _require_branch(found: TaskSet, states: dict[str, TaskState], task: Task, path: Path) -> None:
    """Raise TaskFileError (field 'branch') when another task holds the new task's branch."""
    holders = check_branches(found, states)
    if task.base != task.branch_name and (clash := holders.clash(task.branch_name)):
        raise TaskFileError(str(path), f"{clash}; {BRANCH_HINT}", field="branch")


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
