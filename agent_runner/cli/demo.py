"""Commands: demo (the keyless tour)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console

if TYPE_CHECKING:
    from agent_runner.coordinator.events import RunEvent
    from agent_runner.demo import DemoRun

EVENT_STYLES = {"started": "yellow", "finished": "green", "failed": "red", "requeued": "magenta"}


@app.command()
def demo(
    folder: Annotated[
        Path | None, typer.Argument(help="A new or empty folder for the demo repo (default: a temp folder).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model spec (default: recorded unless a key is set).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Parallel local workers.")] = 2,
) -> None:
    """Create a throwaway repo with one task of each kind and run them on 2 local workers; no key needed."""
    from agent_runner.demo import pick_model, run_demo  # ~18 ms at every CLI start: only `demo` needs it

    target = folder or Path(tempfile.mkdtemp(prefix="agent-runner-demo-")) / "shop"
    chosen = pick_model(model, os.environ)
    if chosen == "recorded":
        console.print(
            "[bold]No API key set: model steps replay RECORDED sessions[/bold] (agent_runner/demo/*.yaml), "
            "marked \\[recorded]. Set ANTHROPIC_API_KEY or OPENAI_API_KEY for a real model.",
            highlight=False,
        )
    else:
        console.print(
            f"Model steps use [bold]{escape(chosen)}[/bold] (real calls, real cost).", highlight=False
        )
    console.print(f"Demo repo: {target}", highlight=False, markup=False)
    run = run_demo(target, model=model, workers=workers, on_event=_print_event)
    console.print(_summary_table(run))
    _print_branches(run)
    console.print(
        f"\nLook around: cd {run.root} && run-agents list && run-agents show lint-legacy", highlight=False
    )
    raise typer.Exit(run.summary.exit_code)


def _print_event(event: RunEvent) -> None:
    from agent_runner.demo import needs_model  # ~18 ms, as in demo(): loaded by then
    from agent_runner.gates.report import brief  # ~1.2 ms (gates, report) that --help would pay

    if event.kind not in EVENT_STYLES or not event.task:
        return
    style = EVENT_STYLES[event.kind]
    note = event.message.splitlines()[0][:100] if event.message else ""
    if event.kind == "started":
        recorded = "scripted:" in note
        note = (
            "no model needed"
            if not needs_model(event.task)
            else "[recorded]"
            if recorded
            else f"model {note}"
        )
    elif event.result is not None and event.result.gates:
        note = f"gates: {brief(event.result.gates)}"
    console.print(f"  [{style}]{event.kind:<9}[/{style}] {event.task:<14} {escape(note)}", highlight=False)


def _summary_table(run: DemoRun) -> Table:
    from agent_runner.demo import needs_model  # ~18 ms, as in demo(): loaded by then

    table = Table(title="queue summary")
    for column in ("task", "status", "model", "model calls", "agent rounds", "reason"):
        table.add_column(column)
    for task_id, status in sorted(run.statuses.items()):
        calls = run.model_calls.get(task_id, 0)
        label = "none needed" if not needs_model(task_id) else ("recorded" if run.is_recorded else run.model)
        reason = run.reasons.get(task_id, "").splitlines()[0][:60] if run.reasons.get(task_id) else ""
        cells = (task_id, status, label, str(calls), str(run.rounds.get(task_id, 0)), reason)
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _print_branches(run: DemoRun) -> None:
    console.print(f"[bold]Branches made[/bold] ({len(run.branches)}):")
    for branch, subject in run.branches:
        console.print(f"  {branch:<22} {subject}", highlight=False, markup=False)
