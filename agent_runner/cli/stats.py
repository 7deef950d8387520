"""Command: stats (the league table of kinds, models and repos)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, get_config, repo_root, warn_skipped
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.stats import FIGURE_COLUMNS, HEADERS, LeagueRow, league

WIDE = 120  # columns a terminal needs for the table
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


@app.command()
def stats(as_json: JsonFlag = False) -> None:
    """Per task kind, model and repo: tasks, accepted share, attempts and cost per accepted task, minutes."""
    config = get_config()
    queue = Queue(config.path(repo_root(), "queue"))
    rows = league(build_report(queue, default_model=config.model))
    warn_skipped(queue)  # on stderr: --json stays parseable
    if as_json:
        typer.echo(json.dumps({"queue": str(queue.path), "rows": [row.to_json() for row in rows]}, indent=2))
    elif rows and console.width >= WIDE:
        console.print(_table(rows))
    elif rows:  # a narrow terminal: one block per row, not eleven folded columns
        console.print(_blocks(rows))
    else:
        console.print("No attempt has ended yet: nothing to compare.", markup=False)


def _table(rows: list[LeagueRow]) -> Table:
    table = Table(title="League table", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for n, header in enumerate(HEADERS):
        justify: Literal["left", "right"] = "right" if n in FIGURE_COLUMNS else "left"
        table.add_column(header, justify=justify, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row.cells()))  # Text: task fields are never read as markup
    return table


def _blocks(rows: list[LeagueRow]) -> Text:
    text = Text("League table\n", style="bold")
    for row in rows:
        cells = row.cells()
        text.append(f"\n{' · '.join(cells[:3])}\n", style="bold")  # kind · model · repo
        figures = [f"{HEADERS[n]} {cells[n]}" for n in range(3, len(HEADERS))]
        text.append("  " + ", ".join(figures) + "\n")
    return text
