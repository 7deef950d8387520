"""Command: land (the integration train; see cli/train_view.py for what it prints)."""

from __future__ import annotations

from typing import Annotated

import typer

from agent_runner.cli.app import app, get_config, repo_root, warn_skipped
from agent_runner.cli.run import make_executor
from agent_runner.cli.train_view import print_result, print_step, publish_trains_view, run_train
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
    publish_trains_view(root, config, trains, quiet=json_out)
