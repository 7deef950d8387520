"""Commands: report, status."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, get_config, repo_root, warn_skipped
from agent_runner.core.cost import unknown_cost_note
from agent_runner.queue.store import Queue
from agent_runner.report.fold import RunReport, build_report

OpenFlag = Annotated[bool, typer.Option("--open", help="Open the report in the default browser.")]
OutPath = Annotated[
    Path | None, typer.Option("--out", help="Where to write it (default: .agent-runner/report.html).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]


@app.command()
def report(open_: OpenFlag = False, out: OutPath = None) -> None:
    """Write the HTML report (timeline, costs, gates, trajectories) from the queue file and print its path."""
    from agent_runner.report.html import generate_report  # ~35-55 ms (jinja2, pygal) at every CLI start

    path = generate_report(repo_root(), get_config(), out=out.resolve() if out else None)
    typer.echo(str(path))
    if open_:
        webbrowser.open(path.as_uri())


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Summarise the run: counts by status, cost so far, per-machine load and the slowest attempts."""
    config = get_config()
    queue = Queue(config.path(repo_root(), "queue"))
    data = build_report(queue, budget_usd=config.budget_usd, default_model=config.model)
    warn_skipped(queue)  # on stderr: --json stays parseable
    if as_json:
        typer.echo(json.dumps(data.to_json(), indent=2, default=str))
        return
    _print_status(data)


def _print_status(data: RunReport) -> None:
    counts = ", ".join(f"{n} {s}" for s, n in data.counts().items() if n) or "no tasks"
    budget = f" of ${data.budget_usd:,.2f} budget" if data.budget_usd else ""
    share = data.cache_read_share()
    cached = f"; {share:.0%} of prompt tokens read from cache" if share is not None else ""
    console.print(f"Tasks: {counts}", markup=False)
    console.print(f"Cost so far: {data.cost.text()}{budget}{cached}", markup=False)
    if note := unknown_cost_note(data.cost.n_unknown):
        console.print(note, markup=False, highlight=False)
    machines = Table("machine", "attempts", "running now", "busy", title="Machines", title_justify="left")
    for name, load in data.machine_load().items():
        cells = (name, str(int(load["attempts"])), str(int(load["running"])), _secs(load["busy_s"]))
        machines.add_row(*(Text(cell) for cell in cells))
    if data.attempts:
        console.print(machines)
        slow = Table(
            "task", "attempt", "worker", "outcome", "duration", title="Slowest", title_justify="left"
        )
        for a in data.slowest():
            row = (a.task_id, str(a.attempt), a.worker, a.outcome, _secs(a.duration))
            slow.add_row(*(Text(cell) for cell in row))
        console.print(slow)


def _secs(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"
