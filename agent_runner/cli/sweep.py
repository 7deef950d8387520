"""Commands: sweep lint, sweep tests, sweep issues (the queue fills itself from the repository)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent_runner.cli.app import app, console, get_config, repo_root
from agent_runner.core.task import RULE_PATTERN
from agent_runner.queue.intake import open_queue

if TYPE_CHECKING:  # imported where used: a sweep's modules are not needed by other commands
    from agent_runner.sweeps.plan import SweepPlan
    from agent_runner.sweeps.write import SweepReport

sweep_app = typer.Typer(
    help="Fill the queue from the repository: lint debt, coverage gaps, labelled issues.",
    no_args_is_help=True,
)
app.add_typer(sweep_app, name="sweep")

Paths = Annotated[
    list[str] | None,
    typer.Argument(metavar="PATHS", help="Files or folders to sweep (default: the whole repo)."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the tasks it would write; write nothing.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _split(values: list[str] | None) -> tuple[str, ...]:
    """Accept `--select A --select B` and `--select A,B` alike; refuse what is not a rule code or prefix."""
    rules = tuple(item for value in values or [] for item in value.replace(",", " ").split())
    if bad := [rule for rule in rules if not RULE_PATTERN.match(rule)]:
        raise typer.BadParameter(f"{bad[0]!r} is not a ruff rule code or prefix (like E501, UP or PLR2004)")
    return rules


@sweep_app.command("lint")
def lint(
    paths: Paths = None,
    select: Annotated[
        list[str] | None,
        typer.Option("--select", metavar="RULES", help="Rules added to the repo's ruff config."),
    ] = None,
    per_task: Annotated[
        int | None,
        typer.Option("--per-task", min=1, help="Violations per model task (default: from its limits)."),
    ] = None,
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Write fix-lint tasks for the base commit's lint (what ruff --fix clears: one task, no model)."""
    from agent_runner.sweeps.lint import LintOptions, sweep_lint  # ~100 ms (gates, coordinator): sweeps only

    started, root, config = time.perf_counter(), repo_root(), get_config()
    options = LintOptions(tuple(paths or ["."]), _split(select), per_task)
    _finish(sweep_lint(root, config, options), started, dry_run=dry_run, as_json=as_json)


@sweep_app.command("tests")
def tests(
    paths: Paths = None,
    below: Annotated[
        float | None, typer.Option("--below", min=0, max=100, help="Coverage line in percent (default: 80).")
    ] = None,
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the repo's tests once with coverage; write a write-tests task per module under the line."""
    # ~100 ms (gates, coordinator): only sweeps pay it
    from agent_runner.sweeps.tests import TestsOptions, sweep_tests

    started, root, config = time.perf_counter(), repo_root(), get_config()
    options = TestsOptions(tuple(paths or ["."]), **({"below": below} if below is not None else {}))
    _finish(sweep_tests(root, config, options), started, dry_run=dry_run, as_json=as_json)


@sweep_app.command("issues")
def issues(
    label: Annotated[str, typer.Option("--label", help="The label of the issues to turn into tasks.")],
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Write a change task per open GitHub issue with the label (the issue number is the task's id)."""
    from agent_runner.github.api import connect  # ~10 ms at every CLI start: only GitHub commands need it
    from agent_runner.github.push import remote_url  # ~1.2 ms at every CLI start
    from agent_runner.sweeps.issues import plan_issues  # ~10 ms (core.task, github records): sweeps only

    started, root, config = time.perf_counter(), repo_root(), get_config()
    remote = None if config.github.repository else remote_url(root, config.github.remote)
    repo = connect(config.github, remote_url=remote)
    _finish(plan_issues(repo.labeled_issues(label), label=label), started, dry_run=dry_run, as_json=as_json)


def _finish(plan: SweepPlan, started: float, *, dry_run: bool, as_json: bool) -> None:
    # ~90-140 ms (gates, coordinator): loaded here, not at every CLI start (the lint and tests sweeps have it)
    from agent_runner.sweeps.write import write_plan

    root, config = repo_root(), get_config()
    report = write_plan(root, config, open_queue(root, config), plan, dry_run=dry_run, started=started)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print(report)


def _print(report: SweepReport) -> None:
    table = Table()
    table.add_column("id", no_wrap=True)
    for name in ("outcome", "gain", "model", "paths", "title"):
        table.add_column(name)
    for row in report.rows:
        paths = ", ".join(row.paths[:3]) + (f" (+{len(row.paths) - 3})" if len(row.paths) > 3 else "")
        outcome = row.outcome.value + (f" ({row.status})" if row.outcome == "left alone" else "")
        table.add_row(
            escape(row.task_id), outcome,
            str(row.gain), "needed" if row.needs_model else "none", escape(paths), escape(row.title),
        )  # fmt: skip
    if report.rows:
        console.print(table)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in report.counts().items()) or "nothing found"
    verb = "would write (dry run, nothing written)" if report.dry_run else "wrote"
    console.print(
        f"sweep {report.plan.kind.value} {verb}: {len(report.plan.tasks)} task(s) ({counts}); "
        f"{report.n_parallel} can run in parallel; {report.n_model_free} without a model; "
        f"{report.seconds:.1f} s",
        markup=False, highlight=False, soft_wrap=True,
    )  # fmt: skip
    for note in report.plan.notes:
        console.print(f"Note: {note}", markup=False, highlight=False, soft_wrap=True)
    for row in report.rows:
        if row.note and row.outcome in ("kept", "stale"):
            console.print(f"{row.task_id}: {row.note}", markup=False, highlight=False, soft_wrap=True)
