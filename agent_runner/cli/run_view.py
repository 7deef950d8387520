"""What `run` and `watch` show: a live table of attempts, JSON lines, and the closing summary."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_runner.holds import HELD
from agent_runner.planning import PlanRow
from agent_runner.scheduling import RunEvent, RunSummary

STYLES = {
    "running": "yellow",
    "finished": "green",
    "failed": "red",
    "requeued": "magenta",
    "cancelled": "red",
    HELD: "blue",
}


@dataclass
class Row:
    """One attempt as the live table shows it."""

    task: str
    attempt: int
    worker: str
    status: str = "running"
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    steps: int = 0
    cost: float | None = None
    note: str = ""


class TrajectoryProgress:
    """Reads steps and cost of a running attempt from its trajectory file, incrementally."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.steps, self.cost = path, 0, 0, 0.0

    def poll(self) -> tuple[int, float]:
        """Return (model calls so far, cost so far)."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return self.steps, self.cost
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            if b'"model"' in line:
                self._count(line)
        return self.steps, self.cost

    def _count(self, line: bytes) -> None:
        try:
            record = json.loads(line)
        except ValueError:
            return
        if record.get("type") == "model":
            self.steps += 1
            self.cost += float(record.get("cost_usd") or 0.0)


class LiveView:
    """A rich table of attempts (task, worker, status, step, cost, elapsed) and the messages so far."""

    def __init__(self, console: Console, state_dir: Path) -> None:
        self.console, self.state_dir = console, state_dir
        self.rows: dict[tuple[str, int], Row] = {}
        self.progress: dict[tuple[str, int], TrajectoryProgress] = {}
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
            path = self.state_dir / "runs" / key[0] / str(key[1]) / "trajectory.jsonl"
            self.progress[key] = TrajectoryProgress(path)
        elif key in self.rows:
            self._end(self.rows[key], event)
        if event.kind in ("invalid", "unknown", "model_blocked", "budget", "unpublished", "discarded"):
            self.messages.append(
                Text(f"{event.kind}: {event.task or ''} {event.message}".strip(), style="yellow")
            )

    def _end(self, row: Row, event: RunEvent) -> None:
        row.status = {"started": "running"}.get(event.kind, event.kind)
        row.ended = time.monotonic()
        row.note = event.message.splitlines()[0][:70] if event.message else ""
        if event.result is not None:
            row.steps, row.cost = event.result.model_calls, event.result.cost_usd

    def render(self) -> Group:
        """Return the table and the messages as one renderable."""
        table = Table(title="agent-runner", expand=False)
        for column in ("task", "worker", "status", "step", "cost", "elapsed", "note"):
            table.add_column(column)
        for key, row in self.rows.items():
            if row.status == "running":
                row.steps, row.cost = self.progress[key].poll()
            elapsed = (row.ended or time.monotonic()) - row.started
            cost = "-" if row.cost is None else f"${row.cost:.3f}"
            status = Text(row.status, style=STYLES.get(row.status, ""))
            is_claimed = row.attempt > 0  # a held task that never started has no attempt
            table.add_row(
                Text(f"{row.task}#{row.attempt}" if is_claimed else row.task),
                Text(row.worker),
                status,
                str(row.steps) if is_claimed else "-",
                cost,
                f"{elapsed:.0f}s" if is_claimed else "-",
                Text(row.note),
            )
        messages = self.messages[-10:]
        return Group(table, *messages, Text("")) if messages else Group(table)  # "" ends the last message


class JsonView:
    """Prints each event as one JSON line."""

    def handle(self, event: RunEvent) -> None:
        """Print the event."""
        sys.stdout.write(json.dumps(event.to_json()) + "\n")
        sys.stdout.flush()

    def __enter__(self) -> JsonView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LineView(JsonView):
    """Without a terminal (a log, a pipe, CI): one plain line per event instead of a redrawn table."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def handle(self, event: RunEvent) -> None:
        """Print `HH:MM:SS kind task#attempt on worker: message` (the first line of the message)."""
        who = f"{event.task}#{event.attempt}" if event.attempt else (event.task or "")
        where = f" on {event.worker}" if event.worker else ""
        note = event.message.splitlines()[0][:200] if event.message else ""
        line = f"{time.strftime('%H:%M:%S')} {event.kind:<9} {who}{where}" + (f": {note}" if note else "")
        self.console.print(Text(line.rstrip()), soft_wrap=True)


def make_view(console: Console, state_dir: Path, *, json_out: bool) -> JsonView | LiveView:
    """Return the view of a run: JSON lines, the live table on a terminal, plain lines elsewhere."""
    if json_out:
        return JsonView()
    return LiveView(console, state_dir) if console.is_terminal else LineView(console)


def print_summary(console: Console, summary: RunSummary) -> None:
    """Print what the run did: done, failed with reasons, cost, tokens, wall time."""
    console.print(
        f"[bold]{len(summary.finished)} finished[/bold], {len(summary.failed)} failed, "
        f"{len(summary.invalid)} invalid; {summary.n_attempts} attempts, ${summary.cost_usd:.4f}, "
        f"{summary.tokens:,} tokens, {summary.wall_s:.1f} s"
        + (" (interrupted)" if summary.interrupted else "")
    )
    for title, items in (
        ("failed", summary.failed),
        ("unpublished", summary.unpublished),
        ("invalid", summary.invalid),
        ("model blocked", summary.blocked_models),
        (HELD, summary.held),
    ):
        for name, reason in items.items():
            console.print(f"  [red]{title}[/red] {escape(name)}: {escape(reason)}", highlight=False)


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
