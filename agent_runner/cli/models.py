"""Commands: models check."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, get_config, repo_root
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.task import TaskStatus, model_spec_for
from agent_runner.models.check import ModelCheck, Status, check_models, is_ok
from agent_runner.queue.intake import open_queue

models_app = typer.Typer(
    help="The configured models: key, name, tool calls, context window.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
_LABELS = {Status.OK: "ok", Status.FAILED: "no", Status.UNKNOWN: "-"}  # -: an earlier part failed
_STYLES = {Status.OK: "green", Status.FAILED: "red", Status.UNKNOWN: "dim"}


def specs_to_check(config: RunnerConfig) -> list[str]:
    """Return the default model, then the models queued tasks name."""
    states = open_queue(repo_root(), config).refresh().values()
    queued = [
        model_spec_for(s.task, override=None, default=config.model)
        for s in states
        if s.status is TaskStatus.QUEUED
    ]
    return list(dict.fromkeys([config.model, *queued]))


def _table(checks: list[ModelCheck]) -> Table:
    table = Table()
    table.add_column("model", overflow="fold")
    for column in ("reach", "key", "name", "tools", "context", "verdict"):
        table.add_column(column, no_wrap=True)
    for c in checks:
        cells = [Text(_LABELS[s], style=_STYLES[s]) for s in (c.reachable, c.key, c.model, c.tool_calls)]
        context = Text(
            "-" if c.context is None else f"{c.context:,}", style="dim" if c.context is None else ""
        )
        verdict = Text(str(c.verdict), style="green" if c.verdict == "ok" else "red")
        table.add_row(Text(c.spec), *cells, context, verdict)
    return table


def _messages(checks: list[ModelCheck]) -> Text:
    """Each model's message under the table, whole (a column would fold it letter by letter)."""
    text = Text()
    for c in (c for c in checks if c.message):
        text.append(c.spec, style="bold").append(f": {c.message}\n")
    return text


@models_app.command("check")
def check(
    spec: Annotated[str | None, typer.Argument(help="Check this spec only (default: configured)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Send one cheap request per model; exit 1 when one fails a check."""
    config = get_config()
    checks = check_models([spec] if spec else specs_to_check(config), config)
    if as_json:
        typer.echo(json.dumps({"models": [asdict(c) for c in checks]}))
    else:
        console.print(_table(checks))
        console.print(_messages(checks), end="")
    if not is_ok(checks):
        raise typer.Exit(1)
