"""What `run` and `watch` show: a live table of attempts, JSON lines, and the closing summary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_runner.cli.run_budget import print_budget_stop
from agent_runner.cli.run_progress import AttemptProgress, PhaseWatch
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.holds import HELD
from agent_runner.coordinator.planning import PlanRow
from agent_runner.coordinator.ratelimit import THROTTLE_EVENTS
from agent_runner.core.cost import UNKNOWN, unknown_cost_note
from agent_runner.core.task import TaskStatus
from agent_runner.queue.state import TaskState

STYLES = {
    "running": "yellow",
    "finished": "green",
    "failed": "red",
    "requeued": "magenta",
    "cancelled": "red",
    "queued": "magenta",
    HELD: "blue",
}
Key = tuple[str, int]


@dataclass
class Row:
    """One attempt as the live table shows it."""

    task: str
    attempt: int
    worker: str
    status: str = "running"
    started: float = field(default_factory=time.monotonic)
    phase: str = "running"  # where a running attempt is: `checkout`, `agent step 4`, `gates round 2`, ...
    ended: float | None = None
    steps: int = 0
    cost: float | None = None
    is_cost_unknown: bool = False  # the result says: a model with no price
    note: str = ""


class LiveView:
    """A rich table of attempts (task, worker, phase or status, step, cost, elapsed) and the messages."""

    def __init__(self, console: Console, state_dir: Path) -> None:
        self.console, self.state_dir = console, state_dir
        self.rows: dict[Key, Row] = {}
        self.progress: dict[Key, AttemptProgress] = {}
        self.messages: list[Text] = []
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self.render, transient=False)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def handle(self, event: RunEvent) -> None:
        """Fold one scheduler event into the table."""
        key = (event.task or "", event.attempt or 0)
        if event.kind == HELD and key not in self.rows:  # not claimed: a row without an attempt
            self.rows[key] = Row(key[0], 0, "-", status=HELD, note=event.message.splitlines()[0][:70])
        elif event.kind == "started":
            self.rows.pop((key[0], 0), None)
            self.rows[key] = Row(key[0], key[1], event.worker or "")
            self.progress[key] = AttemptProgress(self.state_dir / "runs" / key[0] / str(key[1]))
        elif key in self.rows:
            self._end(self.rows[key], event)
        if event.kind in (
            "invalid",
            "unknown",
            "model_blocked",
            "budget",
            "pausing",
            "unpublished",
            "discarded",
            *THROTTLE_EVENTS,
        ):
            when = f"{time.strftime('%H:%M:%S')} " if event.kind in THROTTLE_EVENTS else ""
            self.messages.append(
                Text(
                    f"{when}{event.kind}: {' '.join(filter(None, (event.task, event.message)))}",
                    style="yellow",
                )
            )

    def notice(self, text: str) -> None:
        """Print `text` above the table at once (a line printed beside a live table is drawn over)."""
        self.live.console.print(Text(text, style="bold"), soft_wrap=True)

    def settle(self, states: Mapping[str, TaskState]) -> dict[str, str]:
        """Show each attempt of this run as the queue file has it now; return the tasks queued again."""
        for key, state in settled(self.rows, states).items():
            row = self.rows[key]
            if not _agrees(row.status, state.status):
                row.status, row.note = str(state.status), _first_line(state.reason, 70) or row.note
            row.ended = row.ended or time.monotonic()
        return queued_again(self.rows, states)

    def _end(self, row: Row, event: RunEvent) -> None:
        row.status = {"started": "running"}.get(event.kind, event.kind)
        row.ended = time.monotonic()
        row.note = _first_line(event.message, 70)
        if event.result is not None:
            row.steps, row.cost = event.result.model_calls, event.result.cost_usd
            row.is_cost_unknown = event.result.cost_usd is None

    def render(self) -> Group:
        """Return the table and the messages as one renderable."""
        table = Table(title="agent-runner", expand=False)
        for column in ("task", "worker", "status", "step", "cost", "elapsed", "note"):
            table.add_column(column)
        for key, row in list(self.rows.items()):  # the scheduler's thread adds rows while we draw
            if row.status == "running":
                row.phase, row.steps, row.cost = self.progress[key].poll()
                row.is_cost_unknown = self.progress[key].trajectory.is_cost_unknown
            table.add_row(*_cells(row))
        messages = self.messages[-10:]
        return Group(table, *messages, Text("")) if messages else Group(table)  # "" ends the last message


def _cells(row: Row) -> tuple[Text | str, ...]:
    """Return a row's cells: a running attempt's status is its phase (`agent step 4`)."""
    elapsed = (row.ended or time.monotonic()) - row.started
    cost = UNKNOWN if row.is_cost_unknown else "-" if row.cost is None else f"${row.cost:.3f}"
    shown = row.phase if row.status == "running" else row.status
    is_claimed = row.attempt > 0  # a held task that never started has no attempt
    return (
        Text(f"{row.task}#{row.attempt}" if is_claimed else row.task),
        Text(row.worker),
        Text(shown, style=STYLES.get(row.status, "")),
        str(row.steps) if is_claimed else "-",
        cost,
        f"{elapsed:.0f}s" if is_claimed else "-",
        Text(row.note),
    )


def _first_line(text: str, n_chars: int) -> str:
    return text.splitlines()[0][:n_chars] if text else ""


def _agrees(shown: str, status: TaskStatus) -> bool:
    """Whether what a view shows of an attempt says what the queue file does (a published one finished)."""
    return (TaskStatus.FINISHED if shown == "published" else shown) == status


def settled(keys: Iterable[Key], states: Mapping[str, TaskState]) -> dict[Key, TaskState]:
    """Return the queue state of each attempt (task, n) among `keys` that is still the task's latest."""
    return {
        key: state
        for key in keys
        if key[1] and (state := states.get(key[0])) is not None and state.attempt == key[1]
    }


def queued_again(keys: Iterable[Key], states: Mapping[str, TaskState]) -> dict[str, str]:
    """Return the tasks an attempt of this run gave back to the queue (released or failed, not final)."""
    return {
        key[0]: state.reason
        for key, state in settled(keys, states).items()
        if state.status == TaskStatus.QUEUED
    }


class JsonView:
    """Prints each event as one JSON line."""

    def __init__(self) -> None:
        self.shown: dict[Key, str] = {}  # each attempt of this run: the kind of its last event

    def handle(self, event: RunEvent) -> None:
        """Print the event."""
        self._track(event)
        sys.stdout.write(json.dumps(event.to_json()) + "\n")
        sys.stdout.flush()

    def _track(self, event: RunEvent) -> None:
        if event.task and event.attempt:
            self.shown[(event.task, event.attempt)] = event.kind

    def notice(self, text: str) -> None:
        """Print `text` on stderr at once (stdout carries the events)."""
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def settle(self, states: Mapping[str, TaskState]) -> dict[str, str]:
        """Return the tasks an attempt of this run gave back to the queue (the summary says so)."""
        return queued_again(self.shown, states)

    def __enter__(self) -> JsonView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LineView(JsonView):
    """Without a terminal (a log, a pipe, CI): one plain line per event instead of a redrawn table."""

    def __init__(self, console: Console, state_dir: Path) -> None:
        super().__init__()
        self.console = console
        self.phases = PhaseWatch(state_dir, self._phase_line)  # a long attempt is not a silence

    def handle(self, event: RunEvent) -> None:
        """Print `HH:MM:SS kind task#attempt on worker: message` (the first line of the message)."""
        self._track(event)
        who = f"{event.task}#{event.attempt}" if event.attempt else (event.task or "")
        self._line(event.kind, who, event.worker, event.message)
        if event.task and event.attempt:
            key = (event.task, event.attempt)
            self.phases.add(key) if event.kind == "started" else self.phases.remove(key)

    def _phase_line(self, key: Key, label: str) -> None:
        self._line("phase", f"{key[0]}#{key[1]}", None, label)

    def __enter__(self) -> LineView:
        self.phases.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.phases.stop()

    def _line(self, kind: str, who: str, worker: str | None, message: str) -> None:
        where = f" on {worker}" if worker else ""
        note = _first_line(message, 200)
        head = f"{time.strftime('%H:%M:%S')} {kind:<9} {who}{where}".rstrip()
        line = head + (f": {note}" if note else "")
        self.console.print(Text(line.rstrip()), soft_wrap=True)

    def settle(self, states: Mapping[str, TaskState]) -> dict[str, str]:
        """Print a line for each attempt whose state in the queue file is not what its last line said."""
        for key, state in settled(self.shown, states).items():
            if not _agrees(self.shown[key], state.status):
                self._line(str(state.status), f"{key[0]}#{key[1]}", None, state.reason)
        return super().settle(states)


def make_view(console: Console, state_dir: Path, *, json_out: bool) -> JsonView | LiveView:
    """Return the view of a run: JSON lines, the live table on a terminal, plain lines elsewhere."""
    if json_out:
        return JsonView()
    return LiveView(console, state_dir) if console.is_terminal else LineView(console, state_dir)


def interrupt_notice(presses: int, running: list[Key]) -> str:
    """Return what a Ctrl-C does, said at once: the first stops claiming, the second cancels and releases."""
    names = ", ".join(f"{task}#{attempt}" for task, attempt in running)
    if not running:
        return "Ctrl-C: stopping; nothing is running and no new attempt starts."
    if presses == 1:
        return (
            f"Ctrl-C: stopping; no new attempt starts. The {len(running)} running ({names}) finish and are "
            "recorded. Press Ctrl-C again to cancel them: they go back to the queue, no attempt spent."
        )
    return (
        f"Ctrl-C again: cancelling {len(running)} running ({names}); their workers are stopped and they go "
        "back to the queue (queued, no attempt spent) to run again next time."
    )


def print_summary(console: Console, summary: RunSummary, *, queued: Mapping[str, str] | None = None) -> None:
    """Print what the run did: done, failed with reasons, cost, tokens, wall time, and the tasks this run
    gave back to the queue (`queued`, as the queue file has them: released by Ctrl-C, or failed to retry)."""
    console.print(
        f"[bold]{len(summary.finished)} finished[/bold], {len(summary.failed)} failed, "
        f"{len(summary.invalid)} invalid; {summary.n_attempts} attempts, {summary.cost.text()}, "
        f"{summary.tokens:,} tokens, {summary.wall_s:.1f} s"
        + (" (interrupted)" if summary.interrupted else "")
    )
    if note := unknown_cost_note(summary.n_unknown_cost):
        console.print(f"  [yellow]{note}[/yellow]", highlight=False)
    for pool, note in summary.throttled.items():
        console.print(f"  [yellow]throttled[/yellow] {escape(pool)}: {escape(note)}", highlight=False)
    for title, items in (
        ("failed", summary.failed),
        ("unpublished", summary.unpublished),
        ("invalid", summary.invalid),
        ("model blocked", summary.blocked_models),
        (HELD, summary.held),
        ("queued again", {k: v for k, v in (queued or {}).items() if k not in summary.held}),
    ):
        for name, reason in items.items():
            console.print(f"  [red]{title}[/red] {escape(name)}: {escape(reason)}", highlight=False)
    print_budget_stop(console, summary.budget_stop)


def plan_table(rows: list[PlanRow]) -> Table:
    """Return `run --dry-run` as a table."""
    table = Table(title="run --dry-run (nothing changed)")
    for column in ("task", "kind", "worker", "model", "limits", "note"):
        table.add_column(column)
    for row in rows:
        limits = ", ".join(f"{k}={v}" for k, v in row.limits.items())
        cells = (row.task, row.kind, row.worker or "-", row.model, limits, row.note)
        table.add_row(*(Text(str(cell)) for cell in cells))
    return table


def plan_json(rows: list[PlanRow]) -> list[dict[str, Any]]:
    """Return `run --dry-run --json` records."""
    return [row.__dict__ for row in rows]
