"""The `run-agents` command line: a thin layer over the Python API."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.markup import escape

from agent_runner.cli.app import app, err_console, state
from agent_runner.core.errors import RunnerError

COMMAND_MODULES = (
    "tasks",
    "exec_cmd",
    "run",
    "land",
    "github",
    "machines",
    "models",
    "report",
    "stats",
    "demo",
    "sweep",
)


def _register() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"agent_runner.cli.{name}")


def main() -> None:
    """Entry point of the `run-agents` console script."""
    _register()
    try:
        code = app(standalone_mode=False)  # without standalone mode, click returns typer.Exit's code
        if isinstance(code, int) and code:
            sys.exit(code)
    except RunnerError as exc:
        if state.debug:
            raise
        # messages name TOML tables like [tool.agent-runner]: escaped, not markup
        message = f"[red]Error:[/red] {escape(str(exc))}"
        err_console.print(message, markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors arrive here in non-standalone mode
        # typer >= 0.28 vendors click: its usage errors are TyperExceptions (no `click` import needed).
        if not hasattr(exc, "show"):
            raise
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))


def get_app() -> typer.Typer:
    """Return the app with every command registered (for typer's test runner)."""
    _register()
    return app
