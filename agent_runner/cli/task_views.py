"""Rows, tables and detail views of queued tasks for `list` and `show` (cells are `Text`: never markup)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.cost import NARROW_LEGEND, NARROW_UNKNOWN, CostTotal
from agent_runner.core.errors import QueueError
from agent_runner.core.task import TaskStatus
from agent_runner.queue.intake import SyncReport
from agent_runner.queue.state import TaskState
from agent_runner.queue.store import Queue
from agent_runner.report.labels import model_label

COLUMNS = ("id", "kind", "status", "attempts", "machine", "cost", "PR")
ENDED_WITH_REASON = ("invalid", "failed", "cancelled", "unpublished")
COLOURS = {"finished": "green", "failed": "red", "invalid": "red", "running": "cyan", "cancelled": "yellow"}
Row = dict[str, Any]


def task_row(state: TaskState) -> Row:
    """Return the flat record of one task for `list` (the JSON and the table both use it)."""
    definition = state.task_json  # as queued: a definition that is no valid Task is listed too
    return {
        "id": state.id,
        "kind": definition.get("kind"),
        "title": definition.get("title") or _first_line(definition.get("instructions", "")),
        "status": state.status.value,
        "attempts": state.n_attempts_used,  # counted against max_attempts; infra re-runs are not
        "max_attempts": state.max_attempts,
        "attempt": state.attempt,  # the latest attempt's number, re-runs included
        "machine": state.worker or definition.get("machine"),
        "cost_usd": None if state.n_unknown_cost else round(state.cost_usd, 6),  # null: unknown
        "cost_known_usd": round(state.cost_usd, 6),  # the part with a price
        "n_unknown_cost": state.n_unknown_cost,  # attempts of unknown cost (a model with no price)
        "pr_url": state.pr_url,
        "reason": state.reason,
        "file": state.file,
        "priority": state.priority,
        "depends_on": state.depends_on,
    }


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:80] if text.strip() else ""


def task_rows(root: Path, queue: Queue, report: SyncReport, status: TaskStatus | None) -> list[Row]:
    """Return the rows of every task in the queue plus invalid files the queue cannot hold (id clashes)."""
    rows = [task_row(s) for s in queue.states.values() if not _is_stale_invalid(root, s)]
    recorded = {(row["id"], row["file"]) for row in rows}
    for bad in report.invalid:
        if (bad.id, bad.path) not in recorded:
            row = task_row(TaskState(id=bad.id, status=TaskStatus.INVALID, reason=bad.reason, file=bad.path))
            rows.append(row)
    return [row for row in rows if status is None or row["status"] == status.value]


def _is_stale_invalid(root: Path, state: TaskState) -> bool:
    """An invalid record whose file is gone is no longer a task (its id may be reused)."""
    return state.status == TaskStatus.INVALID and not (state.file and (root / state.file).exists())


def readable(value: Any) -> Any:
    """Return a copy of JSON-like `value` whose strings carry no terminal escape or control character
    (agent text in a result, a reason, an event must not drive the reader's terminal)."""
    from agent_runner.worker.trajectory import printable  # ~2.5 ms that --help would pay

    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {readable(k): readable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [readable(v) for v in value]
    return value


def readable_state(state: TaskState) -> TaskState:
    """Return a copy of `state` for display: its task, reason, result and PR URL made `readable`."""
    return dataclasses.replace(
        state,
        task_json=readable(state.task_json),
        reason=readable(state.reason),
        result_json=readable(state.result_json),
        pr_url=readable(state.pr_url),
        worker=readable(state.worker),
    )


def rows_table(rows: list[Row], *, width: int = 120) -> Table:
    """Return the rich table for `list`; the title is cut (or left out) so the columns fit `width`."""
    rows = readable(rows)
    cells = [_cells(row) for row in rows]
    used = sum(max(len(c[i]) for c in [list(COLUMNS), *cells]) + 2 for i in range(len(COLUMNS)))
    room = width - used
    table = Table(*COLUMNS, *(["title"] if room >= 8 else []), box=None, pad_edge=False, header_style="bold")
    for row, texts in zip(rows, cells, strict=True):
        title = row["title"] or ""
        shown = [title if len(title) <= room else title[: room - 1] + "…"] if room >= 8 else []
        styles = {2: COLOURS.get(row["status"], "")}
        table.add_row(*(Text(t, style=styles.get(i, "")) for i, t in enumerate([*texts, *shown])))
    return table


def _cells(row: Row) -> list[str]:
    total = CostTotal(row["cost_known_usd"], row["n_unknown_cost"])
    has_run = row["attempt"] or total.known_usd or total.n_unknown
    cost = total.text(digits=2, unknown=NARROW_UNKNOWN) if has_run else "-"  # "-": never ran
    attempts = f"{row['attempts']}/{row['max_attempts']}"
    return [row["id"], row["kind"] or "-", row["status"], attempts, row["machine"] or "-", cost,
            row["pr_url"] or "-"]  # fmt: skip


def cost_legend(rows: list[Row]) -> str | None:
    """Return the line under the `list` table that says what `?` in the cost column means (None: no `?`)."""
    return NARROW_LEGEND if any(row["n_unknown_cost"] for row in rows) else None


def row_reasons(rows: list[Row]) -> list[str]:
    """Return one line per invalid, failed, cancelled or unpublished task, or held queued one: why."""
    return [
        f"{row['id']} ({row['status']}): {row['reason']}"
        for row in readable(rows)
        if row["status"] in ENDED_WITH_REASON or (row["status"] == "queued" and row["reason"])
    ]


def detail_table(state: TaskState) -> Table:
    """Return the key/value view of one task for `show`."""
    table = Table(show_header=False, box=None, pad_edge=False)
    fields = {**state.task_json, "status": state.status.value}
    fields |= {"attempts": attempts_text(state), "worker": state.worker}
    fields.pop("max_attempts", None)  # part of "attempts"
    if isinstance(fields.get("model"), str):  # a script's file name, as the report shows it, not its path
        fields["model"] = model_label(fields["model"])
    is_landed = state.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)
    landed = (state.result_json or {}) if is_landed else {}  # where the work is, to review
    fields |= {
        "reason": state.reason,
        "file": state.file,
        "cost": state.cost.text() if _has_run(state) else None,  # $0.0090, not 0.008983999999999999
        "branch": landed.get("branch") if landed.get("head_commit") else None,
        "head": landed.get("head_commit"),
        "pr": state.pr_url,
    }
    instructions = fields.pop("instructions", "")
    for key, value in fields.items():
        if value not in (None, "", [], {}):
            table.add_row(Text(key, style="bold"), Text(str(value)))
    if instructions:
        table.add_row(Text("instructions", style="bold"), Text(instructions))
    return table


def _has_run(state: TaskState) -> bool:
    return bool(state.attempt or state.cost_usd or state.n_unknown_cost)


def attempts_text(state: TaskState) -> str:
    """Return "used of max" for a person, naming re-runs that did not count (infrastructure, interrupted,
    the train's)."""
    text = f"{state.n_attempts_used} of {state.max_attempts}"
    n_reruns = state.attempt - state.n_attempts_used
    if n_reruns > 0:
        runs = "re-run" if n_reruns == 1 else "re-runs"
        why = "infrastructure failures, interruptions, budget pauses or the train's re-queues"
        text += f" (latest #{state.attempt}; {n_reruns} {runs} after {why} not counted)"
    return text


def events_table(events: list[dict[str, Any]]) -> Table:
    """Return the event history of one task for `show`."""
    table = Table(
        "time", "event", "attempt", "worker", "detail", box=None, pad_edge=False, header_style="bold"
    )
    for event in events:
        cells = (_time(event.get("ts")), str(event.get("type")), str(event.get("attempt", "")),
                 str(event.get("worker") or ""), _detail(event))  # fmt: skip
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _time(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if isinstance(ts, int | float) else "?"


def _detail(event: dict[str, Any]) -> str:
    result = event.get("result") or {}
    parts = [event.get("reason"), result.get("summary"), result.get("pr_url") or event.get("pr_url")]
    if event.get("type") in ("claimed", "heartbeat") and event.get("lease_until"):
        parts.append(f"lease until {_time(event['lease_until'])}")
    return "; ".join(str(p) for p in parts if p)


def find_trajectory(root: Path, config: RunnerConfig, state: TaskState, events: list[dict[str, Any]]) -> Path:
    """Return the trajectory file of the latest attempt that has one (a result may name any path: only
    a regular file named like a trajectory is read)."""
    from agent_runner.worker.trajectory import is_trajectory_file  # ~2.5 ms that --help would pay

    runs = config.path(root, "state_dir") / "runs" / state.id
    candidates = [runs / str(state.attempt) / "trajectory.jsonl"]
    for event in reversed(events):
        recorded = (event.get("result") or {}).get("trajectory_path")
        if recorded:
            candidates.append(Path(recorded) if Path(recorded).is_absolute() else root / recorded)
    candidates += [runs / str(n) / "trajectory.jsonl" for n in range(state.attempt - 1, 0, -1)]
    for path in candidates:
        if is_trajectory_file(path):
            return path
    raise QueueError(
        f"no trajectory for {state.id} yet (attempt {state.attempt}); it appears once a run starts"
    )


def trajectory_text(root: Path, config: RunnerConfig, state: TaskState, events: list[dict[str, Any]]) -> str:
    """Return the latest trajectory of a task as text, with every secret the runner knows masked."""
    from agent_runner.core.redact import runner_redactor  # ~1.3 ms that --help would pay
    from agent_runner.worker.trajectory import render_trajectory  # ~2.5 ms, likewise

    path = find_trajectory(root, config, state, events)
    is_running = state.status == TaskStatus.RUNNING
    return render_trajectory(path, redact=runner_redactor(config, os.environ).text, is_running=is_running)
