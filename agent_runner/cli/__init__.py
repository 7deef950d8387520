"""The `run-agents` command line: a thin layer over the Python API."""

from __future__ import annotations

import sys

import typer

from agent_runner.cli.app import app, err_console, state
from agent_runner.errors import RunnerError

COMMAND_MODULES = ("tasks", "run", "github", "machines", "report", "demo")


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"agent_runner.cli.{name}")


def main() -> None:
    """Entry point of the `run-agents` console script."""
    _register()
    try:
        app(standalone_mode=False)
    except RunnerError as exc:
        if state.debug:
            raise
        err_console.print(f"[red]Error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


def get_app() -> typer.Typer:
    """Return the app with every command registered (for typer's test runner)."""
    _register()
    return app
