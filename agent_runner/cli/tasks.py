"""Commands: init, add, list, show, diff, cancel, requeue, compact."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from agent_runner.cli.app import app, console, err_console, get_config, repo_root, warn_skipped
from agent_runner.cli.task_views import (
    cost_legend,
    detail_table,
    events_table,
    find_trajectory,
    readable,
    readable_state,
    row_reasons,
    rows_table,
    task_rows,
)
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import QueueError, RunnerError, TaskFileError
from agent_runner.core.result import sandbox_note
from agent_runner.core.task import Task, TaskKind, TaskStatus, load_task_file, task_from_fields
from agent_runner.queue.intake import (
    SyncReport,
    add_task,
    file_digest,
    open_queue,
    relative,
    slugify,
    sync_tasks,
)
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue
from agent_runner.workflows import install_workflows

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
TaskId = Annotated[str, typer.Argument(help="The task id (see `run-agents list`).")]
Kind = Annotated[TaskKind, typer.Argument(help="fix-lint | write-tests | change | review.")]
Title = Annotated[str, typer.Option(help="One line for tables and the PR title.")]
Message = Annotated[str, typer.Option("-m", "--message", help="Instructions for the agent.")]
Ids = Annotated[
    list[str] | None, typer.Option(metavar="ID", help="An id that must finish first (repeatable).")
]
Paths = Annotated[
    list[str] | None, typer.Option("--path", metavar="PATH", help="A target file or folder (repeatable).")
]
NewId = Annotated[str | None, typer.Option("--id", help="Task id (default: made from title or message).")]
Priority = Annotated[int, typer.Option(help="Higher runs first.")]
ModelSpec = Annotated[str | None, typer.Option(help="Model spec, e.g. openai:gpt-5.")]
Machine = Annotated[str | None, typer.Option(help="Machine name or tag to pin the task to.")]
StatusFilter = Annotated[TaskStatus | None, typer.Option(help="Only tasks with this status.")]
TrajectoryFlag = Annotated[bool, typer.Option(help="Print the latest attempt's trajectory instead.")]


def _open(*, sync: bool = True) -> tuple[Path, RunnerConfig, Queue, SyncReport]:
    """Return the repo root, its config, its queue and (after queueing new task files) the sync report."""
    root = repo_root()
    config = get_config()
    queue = open_queue(root, config)
    report = sync_tasks(root, config, queue) if sync else SyncReport()
    warn_skipped(queue)
    return root, config, queue, report


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
def init(
    github: Annotated[
        bool, typer.Option("--github", help="Also write the GitHub Actions workflows.")
    ] = False,
) -> None:
    """Set up this git repo: tasks/ with an example, prompts/ to edit, config in pyproject.toml."""
    from agent_runner.queue.scaffold import init_project  # ~16 ms (jinja2) at each CLI start: only for init

    report = init_project(repo_root(), get_config())
    for name in report.created:
        console.print(f"created  {name}", markup=False)
    for name in report.kept:
        console.print(f"kept     {name} (already there)", markup=False)
    if github:
        for path in install_workflows(repo_root()):
            console.print(f"created  {path.relative_to(repo_root())}", markup=False)
    console.print("Next: run-agents add fix-lint --path src/ --title 'Clean lint'", soft_wrap=True)


@app.command()
def add(
    kind: Kind,
    path: Paths = None,
    title: Title = "",
    message: Message = "",
    task_id: NewId = None,
    priority: Priority = 0,
    model: ModelSpec = None,
    depends_on: Ids = None,
    machine: Machine = None,
) -> None:
    """Write tasks/<id>.md for a new task and queue it."""
    task_id = task_id or slugify(title or message)
    if not task_id:
        raise TaskFileError("run-agents add", "give --id, --title or -m so the task gets an id", field="id")
    fields: dict[str, Any] = {"id": task_id, "kind": kind, "title": title, "instructions": message}
    fields |= {"paths": path or []}
    fields |= {"priority": priority, "model": model, "depends_on": depends_on or [], "machine": machine}
    task = task_from_fields({k: v for k, v in fields.items() if v is not None}, source="run-agents add")
    root, config, queue, _ = _open()
    written = add_task(root, config, queue, task)
    console.print(f"Queued [bold]{task.id}[/] ({escape(relative(root, written))})", highlight=False)


@app.command("list")
def list_tasks(as_json: JsonFlag = False, status: StatusFilter = None) -> None:
    """Show every task: id, kind, status, attempts, machine, cost, PR (new task files are queued first)."""
    root, config, queue, report = _open()
    rows = [_with_hold(row, queue, config) for row in task_rows(root, queue, report, status)]
    if as_json:
        _echo_json(rows)
    elif rows:
        console.print(rows_table(rows, width=console.width))
        if legend := cost_legend(rows):
            console.print(legend, markup=False, highlight=False)
        for line in row_reasons(rows):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    else:
        console.print("No tasks. Add one with `run-agents add KIND ...` or write a file in tasks/.")
    for task_id in report.edited_after_start:
        note = f"Note: {task_id}'s file changed after it ran; `run-agents requeue {task_id}` reruns it."
        err_console.print(note, soft_wrap=True, highlight=False, markup=False)


@app.command()
def show(task_id: TaskId, as_json: JsonFlag = False, trajectory: TrajectoryFlag = False) -> None:
    """Show one task's fields and event history (or its latest trajectory)."""
    root, config, queue, _ = _open()
    state = queue.states.get(task_id)
    if state is None:
        raise QueueError(f"no task '{task_id}' in {queue.path}; `run-agents list` shows the known ids")
    events = list(queue.events(task_id))
    state = _state_with_hold(state, config)
    if not as_json:  # JSON escapes control characters itself
        state, events = readable_state(state), readable(events)
    if trajectory:
        from agent_runner.worker.trajectory import render_trajectory  # ~2.5 ms that --help would pay

        path = find_trajectory(root, config, state, events)
        typer.echo(render_trajectory(path, is_running=state.status == TaskStatus.RUNNING))
    elif as_json:
        _echo_json({"task": state.to_json() | {"attempts_used": state.n_attempts_used}, "events": events})
    else:
        console.print(detail_table(state))
        if state.result_json:
            _print_sandbox(state.result_json)
        _print_result(root, state)
        console.print()
        console.print(events_table(events))


def _hold_of(state: TaskState | None, config: RunnerConfig) -> str | None:
    """Return "held here: why" for a queued task a run started here would hold over its model, else None."""
    from agent_runner.coordinator.holds import held_here  # ~2 ms that --help would pay

    if state is None or state.status != TaskStatus.QUEUED or state.reason:
        return None
    problem = held_here(state.task, config, os.environ)
    return f"held here: {problem}" if problem else None


def _with_hold(row: dict[str, Any], queue: Queue, config: RunnerConfig) -> dict[str, Any]:
    hold = _hold_of(queue.states.get(row["id"]), config)
    return row | {"reason": hold} if hold else row


def _state_with_hold(state: TaskState, config: RunnerConfig) -> TaskState:
    hold = _hold_of(state, config)
    return dataclasses.replace(state, reason=hold) if hold else state


def _print_result(root: Path, state: TaskState) -> None:
    """Print the last result's gates, a review's findings, and where the change is with how to see it."""
    # ~2.4 ms (result views, report.change) that --help would pay
    from agent_runner.cli.result_views import (
        change_lines,
        findings_view,
        gates_table,
        limit_line,
        review_answer,
    )
    from agent_runner.report.change import find_change  # ~1.3 ms of those

    if state.result_json and (limit := limit_line(state.result_json)) is not None:
        console.print(limit, highlight=False, soft_wrap=True)
    if state.result_json and (table := gates_table(state.result_json)) is not None:
        console.print()
        console.print(table)
    if (answer := review_answer(state)) is not None:
        console.print()
        console.print(findings_view(answer))
    change, problem = None, ""
    if state.task_json.get("kind") != "review":
        try:
            change = find_change(root, state)
        except RunnerError as exc:
            problem = str(exc)
    lines = change_lines(state, change, problem)
    if lines:
        console.print()
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _print_sandbox(result: dict[str, Any]) -> None:
    """Print what confined the agent of the last result; in red when nothing did."""
    sandbox = result.get("sandbox")
    note = sandbox_note(sandbox, machine=result.get("machine"))
    style = "bold red" if sandbox == "none" else ""
    console.print(note, style=style, markup=False, highlight=False, soft_wrap=True)


@app.command()
def diff(
    task_id: TaskId,
    stat: Annotated[
        bool, typer.Option("--stat", help="Only the files changed, with lines added and removed.")
    ] = False,
) -> None:
    """Print a task's change: `git diff base..agent/<id>` in its source repo."""
    from agent_runner.report.change import change_diff, find_change  # ~2.4 ms with views, as in show

    root, _config, queue, _ = _open()
    state = queue.states.get(task_id)
    if state is None:
        raise QueueError(f"no task '{task_id}' in {queue.path}; `run-agents list` shows the known ids")
    typer.echo(change_diff(find_change(root, state), stat=stat), nl=False)


@app.command()
def cancel(task_id: TaskId) -> None:
    """Cancel a task; a running attempt's late result is discarded."""
    _root, _config, queue, _ = _open()
    before = queue.states.get(task_id)
    was = ""
    if before is not None:
        was = f" (was {before.status}, attempts {before.n_attempts_used} of {before.max_attempts})"
    queue.cancel(task_id)
    console.print(f"Cancelled {task_id}{was}", markup=False, highlight=False)


@app.command()
def requeue(task_id: TaskId) -> None:
    """Queue a task again with fresh attempts, re-reading its task file when it still exists."""
    root, _config, queue, _ = _open()
    state = queue.states.get(task_id)
    file = root / state.file if state is not None and state.file else None
    if file is not None and file.is_file():
        task = _reread(file, task_id)
        queue.requeue(task_id, task, file=relative(root, file), digest=file_digest(file))
    else:
        queue.requeue(task_id)
    console.print(f"Requeued {task_id}", markup=False, highlight=False)


def _reread(file: Path, task_id: str) -> Task:
    task = load_task_file(file)
    if task.id != task_id:
        raise TaskFileError(str(file), f"now says id '{task.id}', not '{task_id}'", field="id")
    return task


@app.command()
def compact() -> None:
    """Rewrite the queue file as one line per task (atomic); the state stays the same."""
    _root, _config, queue, _ = _open(sync=False)
    n_events = sum(1 for _ in queue.events())
    n_tasks = queue.compact()
    console.print(f"Compacted {queue.path}: {n_events} events -> {n_tasks} lines", markup=False)
