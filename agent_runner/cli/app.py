"""The typer application object and the helpers every command shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from agent_runner.config.runner import RunnerConfig, find_root, load_config
from agent_runner.models import spec_problem
from agent_runner.queue.log import QueueLog

app = typer.Typer(
    name="run-agents",
    help="Run autonomous coding agents on chores in bulk: one queue file, verified results, pull requests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: typer's rich panels label every flag (even --help) `<bool>`
)
console = Console()
err_console = Console(stderr=True)


@dataclass
class State:
    """Options shared by every command."""

    debug: bool = False
    root: Path | None = None


state = State()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    root: Annotated[
        Path | None, typer.Option("--root", help="The repo holding tasks/ (default: found from cwd).")
    ] = None,
) -> None:
    """Run autonomous coding agents on chores in bulk."""
    state.debug = debug
    state.root = root


def repo_root() -> Path:
    """Return the repo root the command works on."""
    return (state.root or find_root()).resolve()


def get_config(**overrides: Any) -> RunnerConfig:
    """Load the config for the current repo with flag overrides (None means not given)."""
    return load_config(repo_root(), overrides={k: v for k, v in overrides.items() if v is not None})


def check_model(spec: str | None) -> str | None:
    """Refuse a --model that names no model before anything starts (every task would be blocked)."""
    if spec is not None and (problem := spec_problem(spec)):
        raise typer.BadParameter(problem)
    return spec


def warn_skipped(queue: QueueLog) -> None:
    """Print a warning for each queue line the fold skipped (file:line, what is wrong, the text)."""
    for bad in queue.corrupt:
        where = escape(f"{queue.path}:{bad.lineno}")
        warning = f"[yellow]Warning:[/] {where}: {escape(bad.problem)}, skipped: {escape(repr(bad.text))}"
        err_console.print(warning, soft_wrap=True, highlight=False)
