"""Commands: publish, prs, review, plan, ingest (GitHub and GitHub Actions)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agent_runner.cli.app import app, console, get_config, repo_root
from agent_runner.core.errors import QueueError, RunnerError
from agent_runner.core.task import TaskStatus
from agent_runner.models import get_model
from agent_runner.queue.intake import open_queue

if TYPE_CHECKING:
    from agent_runner.github.refresh.refresher import RefreshRow

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
StateFlag = Annotated[
    bool,
    typer.Option(
        "--state-branch", help="Read (and for ingest and refresh, commit) the queue file on the state branch."
    ),
]


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")


def _repo() -> Any:
    from agent_runner.github.api import connect  # ~10 ms at every CLI start: only GitHub commands need it
    from agent_runner.github.push import remote_url  # ~1.2 ms at every CLI start

    config, root = get_config(), repo_root()
    return connect(config.github, remote_url=remote_url(root, config.github.remote))


@app.command()
def publish(task_id: Annotated[str, typer.Argument(help="A finished or unpublished task.")]) -> None:
    """Push agent/<id> and open or update its pull request (retry after `unpublished`)."""
    from agent_runner.core.redact import runner_redactor  # ~1.3 ms at every CLI start
    from agent_runner.github.publisher import GitHubPublisher  # ~11 ms at every CLI start

    root, config = repo_root(), get_config()
    queue = open_queue(root, config)
    state = queue.refresh().get(task_id)
    task, result = (state.task, state.result) if state else (None, None)
    if (
        state is None
        or state.status not in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)
        or not result
        or not task
    ):
        status = state.status if state else "unknown"
        raise QueueError(
            f"{task_id} is {status}; only finished or unpublished tasks with a result can be published"
        )
    try:
        url = GitHubPublisher(config.github, redactor=runner_redactor(config, os.environ)).publish(
            task, result, root
        )
    except RunnerError as exc:
        queue.publish_event(task_id, error=str(exc))
        raise
    queue.publish_event(task_id, pr_url=url)
    console.print(
        f"published {task_id}: {url or task.branch_name + ' (pushed, no PR: pr: false)'}",
        highlight=False,
        markup=False,
    )


@app.command()
def prs(as_json: JsonFlag = False) -> None:
    """List the pull requests this runner opened, with state, checks, review state and mergeability."""
    root, config = repo_root(), get_config()
    states = [s for s in open_queue(root, config).refresh().values() if s.pr_url]
    rows = [_pr_row(gh, s) for gh in [_repo()] for s in states] if states else []
    if as_json:
        _echo_json(rows)
        return
    table = Table("task", "PR", "state", "checks", "review", "mergeable")
    for row in rows:
        cells = (row["state"], row["checks"], row["review"], str(row["mergeable_state"]))
        table.add_row(*(Text(str(cell)) for cell in (row["task"], f"#{row['pr']}", *cells)))
    console.print(table if rows else _no_prs(has_token=bool(_token())), markup=False, highlight=False)


def _no_prs(*, has_token: bool) -> str:
    """Say why there is no pull request, and what opens one (`run` publishes only with a token)."""
    if has_token:
        return "No pull requests yet: `run-agents run` opens one for each finished task."
    return (
        "No pull requests yet, and none will open without a GitHub token: `run` keeps finished work on "
        "local agent/<id> branches. Set GITHUB_TOKEN (or GH_TOKEN), then `run-agents publish ID` opens one."
    )


def _pr_row(gh: Any, state: Any) -> dict[str, Any]:
    from agent_runner.review.post import parse_pr_ref  # ~28 ms (the reviewer) at every CLI start

    info = gh.status(parse_pr_ref(state.pr_url))
    pull = info.pull
    shown = "merged" if pull.merged else ("draft" if pull.draft and pull.state == "open" else pull.state)
    return {
        "task": state.id, "pr": pull.number, "url": pull.url, "state": shown, "checks": info.checks,
        "review": info.review_state, "mergeable": pull.mergeable, "mergeable_state": pull.mergeable_state,
    }  # fmt: skip


@app.command()
def review(
    prs: Annotated[list[str] | None, typer.Argument(metavar="PR", help="PR numbers or URLs.")] = None,
    all_open: Annotated[bool, typer.Option("--all", help="Every open PR labeled agent-runner.")] = False,
    post: Annotated[
        bool, typer.Option("--post", help="Post (or update) one GitHub review with inline comments.")
    ] = False,
    fix: Annotated[
        bool, typer.Option("--fix", help="Write blocking findings as a follow-up task on the PR branch.")
    ] = False,
    model: Annotated[str | None, typer.Option(help="Model spec (default: review_model, else model).")] = None,
    state_branch: StateFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Review pull requests with a model: findings with file, line, severity, and a verdict."""
    # ~17-30 ms (Actions: landing, planning), ~28 ms (the reviewer), ~1.3 ms (redact): at every CLI start
    from agent_runner.core.redact import runner_redactor
    from agent_runner.github.actions import QueueTasks, pull_state
    from agent_runner.review.post import review_prs  # ~28 ms

    root, config = repo_root(), get_config()
    if state_branch:
        pull_state(root, config, token=_token())
    if not prs and not all_open:
        raise typer.BadParameter("name a PR (number or URL) or pass --all")
    spec = model or config.review_model or config.model
    outcomes = review_prs(
        _repo(), prs or [], model=get_model(spec, config=config.models), tasks=QueueTasks(root, config),
        config=config.github, root=root, tasks_dir=config.path(root, "tasks_dir"), all_open=all_open,
        post=post, fix=fix, redactor=runner_redactor(config, os.environ),
    )  # fmt: skip
    if as_json:
        _echo_json([o.to_json() for o in outcomes])
        return
    for outcome in outcomes:
        _print_review(outcome)


def _print_review(outcome: Any) -> None:
    report = outcome.report
    console.print(
        f"PR #{report.pr} {escape(report.url)}: [bold]{escape(report.verdict)}[/bold] "
        f"({len(report.findings)} findings)",
        highlight=False,
    )
    for f in report.findings:
        console.print(
            f"  {f.severity:<9} {f.file}:{f.line or '?'}  {f.explanation}", highlight=False, markup=False
        )
    for skipped in report.skipped:
        console.print(f"  skipped  {skipped.file}: {skipped.reason}", highlight=False, markup=False)
    if outcome.posted is not None:
        console.print(
            f"  review {'updated' if outcome.posted.updated else 'posted'} ({outcome.posted.n_inline} inline)"
        )
    if outcome.fix is not None:
        console.print(
            f"  {outcome.fix.reason}" + (f" -> {outcome.fix_file}" if outcome.fix_file else ""), markup=False
        )


@app.command()
def plan(
    matrix: Annotated[bool, typer.Option("--matrix", help="Print a GitHub Actions matrix as JSON.")] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", metavar="ID", help="Only this task id (repeatable).")
    ] = None,
    state_branch: StateFlag = False,
) -> None:
    """Show the tasks that may start now (overlapping paths wait); `--matrix` for GitHub Actions."""
    from agent_runner.github.actions import plan_matrix, pull_state  # ~17-30 ms at every CLI start

    root, config = repo_root(), get_config()
    if state_branch:
        pull_state(root, config, token=_token())
    ids = frozenset(i for item in only or [] for i in item.replace(",", " ").split())
    result = plan_matrix(root, config, only=ids)
    if matrix:
        typer.echo(json.dumps(result, separators=(",", ":")))
        return
    for entry in result["include"]:
        console.print(
            f"{entry['id']}  {entry['file']}  attempt {entry['attempt']}", highlight=False, markup=False
        )


@app.command()
def ingest(
    result_dir: Annotated[
        Path, typer.Argument(help="Folder of result JSON files (and bundles) from `exec`.")
    ],
    publish_results: Annotated[
        bool, typer.Option("--publish/--no-publish", help="Push and open PRs.")
    ] = True,
    state_branch: StateFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Record downloaded worker results in the queue, fetch their commits, and publish them."""
    # ~11 ms (publisher), ~17-30 ms (Actions: landing, planning), ~1.3 ms (redact): at every CLI start
    from agent_runner.core.redact import runner_redactor
    from agent_runner.github.actions import ingest as ingest_results
    from agent_runner.github.actions import pull_state, push_state  # ~17-30 ms
    from agent_runner.github.publisher import GitHubPublisher  # ~11 ms

    root, config = repo_root(), get_config()
    if state_branch:
        pull_state(root, config, token=_token())
    redactor = runner_redactor(config, os.environ)
    publisher = GitHubPublisher(config.github, redactor=redactor) if publish_results else None
    rows = ingest_results(root, config, result_dir, publisher=publisher)
    if state_branch and rows:
        push_state(root, config, token=_token(), message=f"agent-runner: {len(rows)} result(s)")
    if as_json:
        _echo_json([row.to_json() for row in rows])
        return
    for row in rows:
        console.print(
            f"{row.task}: {row.outcome} -> {row.status} {row.pr_url or ''} {row.note}",
            highlight=False,
            markup=False,
        )


@app.command()
def refresh(state_branch: StateFlag = False, as_json: JsonFlag = False) -> None:
    """Rebase open agent PRs onto their moved base, re-run their gates, update them; re-queue what broke."""
    from agent_runner.cli.run import make_executor  # ~1 ms: loaded with the app
    from agent_runner.coordinator.landing import LandingRules  # ~80 ms with github.refresh, only here
    from agent_runner.github.actions import pull_state, push_state
    from agent_runner.github.refresh.scope import refresh_all
    from agent_runner.github.refresh.train import TrainRequeuer, TrainVerifier  # ~40 ms (verify job, train)

    root, config = repo_root(), get_config()
    if state_branch:
        pull_state(root, config, token=_token())
    executor = make_executor(config, root=root)
    try:
        verifier = TrainVerifier(executor, config, LandingRules.of(config))
        rows = refresh_all(root, config, verifier=verifier, requeuer=TrainRequeuer(open_queue(root, config)))
    finally:
        executor.close()
    if state_branch and any(row.outcome == "requeued" for row in rows):
        push_state(root, config, token=_token(), message="agent-runner: refresh re-queued tasks")
    if as_json:
        _echo_json([row.to_json() for row in rows])
        return
    _print_refresh(rows)


def _print_refresh(rows: list[RefreshRow]) -> None:
    """Print the PRs that moved as a table, or say that nothing did."""
    moved = [row for row in rows if row.outcome != "unchanged"]
    if not moved:
        shown = f"{len(rows)} open agent PR(s) already on their base's head" if rows else "no open agent PR"
        console.print(f"Nothing to refresh: {shown}.", highlight=False, markup=False)
        return
    table = Table("task", "PR", "outcome", "head", "reason")
    for row in rows:
        cells = (row.task, f"#{row.pr}" if row.pr else "-", row.outcome, row.head[:12], row.reason)
        table.add_row(*(Text(str(cell)) for cell in cells))
    console.print(table)
