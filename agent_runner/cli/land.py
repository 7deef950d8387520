"""Command: land (the integration train; see cli/train_view.py for what it prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from agent_runner.cli.app import app, console, get_config, repo_root, warn_skipped
from agent_runner.cli.run import make_executor
from agent_runner.cli.train_view import print_result, print_step, run_train
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import GitHubError
from agent_runner.core.train import TrainRun
from agent_runner.queue.intake import open_queue


@app.command()
def land(
    json_out: Annotated[bool, typer.Option("--json", help="Print the trains as JSON for scripts.")] = False,
    batch: Annotated[
        int | None, typer.Option(help="Results verified together (one gate run, bisected when red).")
    ] = None,
) -> None:
    """Land the accepted, unmerged results one at a time onto one verified integration branch."""
    config = get_config(train={"batch": batch} if batch else None)
    root = repo_root()
    queue = open_queue(root, config)
    queue.check()
    warn_skipped(queue)
    executor = make_executor(config, root=root)
    try:
        trains = run_train(
            queue, executor, config=config, root=root, on_step=None if json_out else print_step
        )
    finally:
        executor.close()
    print_result(trains, json_out=json_out)
    _publish(root, config, trains, quiet=json_out)


def _publish(root: Path, config: RunnerConfig, trains: list[TrainRun], *, quiet: bool) -> None:
    """With a GitHub token: the trains' PRs as `github.pr_mode` says; a failure only warns."""
    from agent_runner.github.train_pr import publish_trains  # ~40 ms (the publisher; PyGithub lazily)

    try:
        done = publish_trains(root, config.github, trains)
    except GitHubError as exc:
        console.print(f"[yellow]Not published:[/] {escape(str(exc))}; `run-agents land` again retries")
        return
    for pull in (p for d in done for p in d.pulls if not quiet):
        console.print(f"PR {pull.number or '-'} ({pull.task_id or 'integration'}): {pull.note}", markup=False)
