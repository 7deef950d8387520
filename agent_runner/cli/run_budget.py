"""The budget flags of `run` and `watch` (`--budget`, `--for`, `--until`) and the summary's budget lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent_runner.config.timebudget import CLOCK_HELP, DURATION_HELP, parse_clock, parse_duration
from agent_runner.coordinator.budget import BudgetStop


def _refusing(parse: Callable[[str], object]) -> Callable[[str | None], str | None]:
    """Return an option callback that refuses, before anything starts, a value `parse` cannot read."""

    def check(value: str | None) -> str | None:
        if value is not None:
            try:
                parse(value)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from exc
        return value

    return check


_check_duration = _refusing(parse_duration)  # --for: 8h, 90m, 1h30m
_check_clock = _refusing(parse_clock)  # --until: 07:00


BudgetOpt = Annotated[
    float | None,
    typer.Option(
        "--budget", min=0.01, metavar="USD",
        help="Spend of this run at most: reached, running attempts pause at their next model call.",
    ),
]  # fmt: skip
ForOpt = Annotated[
    str | None,
    typer.Option(
        "--for", metavar="DURATION", callback=_check_duration,
        help=f"Time budget of this run, {DURATION_HELP}: no attempt starts that cannot end by then.",
    ),
]  # fmt: skip
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="HH:MM", callback=_check_clock,
        help=f"End of this run, {CLOCK_HELP} (the next one); with --for, the earlier.",
    ),
]  # fmt: skip


def budget_overrides(budget: float | None, run_for: str | None, run_until: str | None) -> dict[str, object]:
    """Return the config overrides of the budget flags (None: not given)."""
    return {"budget_usd": budget, "run_for": run_for, "run_until": run_until}


def print_budget_stop(console: Console, stop: BudgetStop | None) -> None:
    """Print which budget stopped the run, what is left to do, and the command that goes on."""
    if stop is None:
        return
    left = f"{stop.n_queued} task(s) left"
    if stop.n_paused:
        left += f" ({stop.n_paused} paused at a model call, no attempt spent)"
    console.print(f"  [yellow]stopped[/yellow]: {escape(stop.message)}", soft_wrap=True)
    console.print(f"  {left}", highlight=False, soft_wrap=True)
    console.print(f"  go on: [bold]{escape(stop.command)}[/bold]", highlight=False, soft_wrap=True)
