"""Command: stats (the league table of kinds, models and repos)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, get_config, repo_root, warn_skipped
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.stats import FIGURE_COLUMNS, HEADERS, LeagueRow, league

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
    elif rows:
        console.print(_table(rows))
    else:
        console.print("No attempt has ended yet: nothing to compare.", markup=False)


def _table(rows: list[LeagueRow]) -> Table:
    table = Table(title="League table", title_justify="left")
    for n, header in enumerate(HEADERS):
        table.add_column(
            header,
            justify="right" if n in FIGURE_COLUMNS else "left",
            overflow="fold",
            ratio=2 if n == 1 else 1,
        )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row.cells()))  # Text: task fields are never read as markup
    return table
