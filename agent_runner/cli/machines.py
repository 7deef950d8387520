"""Commands: machines, machines check."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, err_console, get_config
from agent_runner.core.errors import ConfigError
from agent_runner.executors.ssh import MachineStatus, SshExecutor, coordinator_version

machines_app = typer.Typer(help="The SSH fleet: reachability, versions, free slots.", no_args_is_help=False)
app.add_typer(machines_app, name="machines")
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def check_fleet() -> list[MachineStatus]:
    """Check every configured machine (in parallel) and return what was found."""
    config = get_config()
    if not config.machines:
        raise ConfigError(
            "no machines configured; add [[tool.agent-runner.machines]] (name, ssh) to pyproject.toml"
        )
    logging.getLogger("agent_runner.executors.ssh").setLevel(logging.ERROR)  # problems are printed below
    executor = SshExecutor(config.machines, ssh=config.ssh, forward_env=config.forward_env)
    try:
        return executor.check()
    finally:
        executor.close()


def _row(status: MachineStatus) -> dict[str, Any]:
    return {
        **asdict(status),
        "free_slots": status.free_slots,
        "version_mismatch": status.is_version_mismatch,
    }


def _table(statuses: list[MachineStatus]) -> Table:
    table = Table("machine", "ssh", "up", "run-agents", "git", "python", "free", "running")
    for s in statuses:
        up = Text("yes", style="green") if s.is_reachable else Text("no", style="red")
        table.add_row(
            Text(s.name), Text(s.target), up, _version(s), Text(s.git_version), Text(s.python_version),
            f"{s.free_slots}/{s.workers}", str(s.n_running_there),
        )  # fmt: skip
    return table


def _version(s: MachineStatus) -> Text:
    if not s.is_reachable:
        return Text("")
    if s.is_version_mismatch:
        return Text.assemble((s.runner_version, "red"), f" (here {coordinator_version()})")
    return Text(s.runner_version)


def _report(statuses: list[MachineStatus], *, as_json: bool) -> None:
    if as_json:
        data = {"coordinator_version": coordinator_version(), "machines": [_row(s) for s in statuses]}
        typer.echo(json.dumps(data))
    else:
        console.print(_table(statuses))
    bad = [s for s in statuses if not s.is_reachable or s.is_version_mismatch]
    for s in bad:
        problem = s.error or f"runs agent-runner {s.runner_version}, this machine {coordinator_version()}"
        err_console.print(f"[yellow]Warning:[/] {escape(f'{s.name}: {problem}')}", highlight=False)
    if bad:
        raise typer.Exit(1)


@machines_app.callback(invoke_without_command=True)
def machines(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show each machine: reachable, run-agents/git/python versions there, free slots, running tasks."""
    if ctx.invoked_subcommand is None:
        _report(check_fleet(), as_json=as_json)


@machines_app.command("check")
def check(as_json: JsonFlag = False) -> None:
    """Check every machine; exit 1 when one is unreachable or runs another agent-runner version."""
    _report(check_fleet(), as_json=as_json)
