"""Command: exec, the worker command (one task in its own checkout; the result JSON on stdout)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from agent_runner.cli.app import app, check_model, console, get_config, repo_root
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.repo import git


@app.command("exec")
def exec_(
    task_file: Annotated[str, typer.Argument(help="A task file, or - for a WorkRequest JSON on stdin.")],
    repo: Annotated[
        str | None, typer.Option(help="Source repo path or URL (default: the current repo).")
    ] = None,
    base: Annotated[str | None, typer.Option(help="Base branch (default: the task's, else HEAD).")] = None,
    attempt: Annotated[int, typer.Option(help="Attempt number.")] = 1,
    model: Annotated[
        str | None, typer.Option(help="Model spec, e.g. anthropic:claude-sonnet-5-5.", callback=check_model)
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (always with -).")
    ] = False,
    inline_bundle: Annotated[bool, typer.Option(help="Put the commits in the JSON as base64.")] = False,
    workdir: Annotated[Path | None, typer.Option(help="State folder for checkouts and runs.")] = None,
) -> None:
    """Run one task in its own checkout and print the result (the worker command; never pushes)."""
    # ~70-100 ms (the worker: job, agent, gates) that every other command would pay at start
    from agent_runner.executors.fork.child import read_request
    from agent_runner.worker import serve as worker
    from agent_runner.worker.job import run_job  # ~70-100 ms with the line above

    if task_file == "-":
        worker.die_with_parent()
        worker.log_to_stderr()
        folder = workdir or git.home_dir() / "work"
        trash: list[Path] = []
        data = read_request(sys.stdin.buffer)  # at most MAX_REQUEST_BYTES: a task and a source bundle
        result = worker.serve_request(data, workdir=folder, inline_bundle=inline_bundle, trash=trash)
        sys.stdout.write(worker.result_line(result))
        sys.stdout.flush()
        worker.remove_in_background(trash)
        return
    request, config = _file_request(Path(task_file), repo=repo, base=base, attempt=attempt, model=model)
    folder = workdir or config.path(repo_root(), "state_dir")
    with worker.stdout_to_stderr():
        result = run_job(request, workdir=folder, inline_bundle=inline_bundle)
    if json_out:
        sys.stdout.write(worker.result_line(result))
        return
    _print_result(result)
    if result.outcome != Outcome.ACCEPTED:
        raise typer.Exit(1)


def _file_request(
    path: Path, *, repo: str | None, base: str | None, attempt: int, model: str | None
) -> tuple[WorkRequest, RunnerConfig]:
    task = load_task_file(path)
    config = get_config()
    source = repo or task.repo or str(repo_root())
    secrets = {k: os.environ[k] for k in config.forward_env if os.environ.get(k)}
    request = WorkRequest(
        task=task, attempt=attempt, repo=source, base=base or task.base, model=model,
        config=config.model_dump(mode="json", by_alias=True), secrets=secrets,
    )  # fmt: skip
    return request, config


def _print_result(result: TaskResult) -> None:
    style = "green" if result.outcome == Outcome.ACCEPTED else "red"
    console.print(
        f"[{style}]{result.outcome}[/{style}] {result.task_id} (attempt {result.attempt})", highlight=False
    )
    for label, value in (
        ("reason", result.reason), ("summary", result.summary), ("branch", result.branch),
        ("base", result.base_commit), ("head", result.head_commit), ("bundle", result.bundle_path),
        ("trajectory", result.trajectory_path), ("checkout", result.checkout_path),
    ):  # fmt: skip
        if value:
            console.print(f"  {label}: {value}", highlight=False, markup=False, soft_wrap=True)
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    console.print(
        f"  steps {result.model_calls}, tokens {result.usage.total:,}, cost {cost}, {result.duration_s:.1f} s"
    )
