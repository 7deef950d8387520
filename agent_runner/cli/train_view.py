"""The integration train in the terminal: its steps as they happen, each train's branch; `run --land`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from agent_runner.cli.app import console
from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import GitHubError
from agent_runner.core.protocols import Executor
from agent_runner.core.train import StepOutcome, TrainRun, TrainStep
from agent_runner.queue.store import Queue

if TYPE_CHECKING:
    from agent_runner.coordinator.train import OnStep

_STYLES = {StepOutcome.LANDED: "green", StepOutcome.CONFLICT: "yellow", StepOutcome.RED: "red"}


def print_result(trains: list[TrainRun], *, json_out: bool) -> None:
    """Print the trains: one JSON line for scripts, else a line per integration branch."""
    if json_out:
        sys.stdout.write(
            json.dumps({"event": "trains", "trains": [t.model_dump(mode="json") for t in trains]})
        )
        sys.stdout.write("\n")
    else:
        print_trains(trains)


def run_train(
    queue: Queue, executor: Executor, *, config: RunnerConfig, root: Path, on_step: OnStep | None
) -> list[TrainRun]:
    """Run the integration train (coordinator/train.py) and return what it did."""
    # ~290 ms measured at load 10 (landing, the gates, the verify job) that every other command would pay
    from agent_runner.coordinator.train import land as land_results

    return land_results(queue, executor, config=config, root=root, on_step=on_step)


def print_step(step: TrainStep) -> None:
    """Print one step as the train takes it."""
    style = _STYLES[step.outcome]
    where = f" as {step.commit[:12]}" if step.commit else ": queued again"
    console.print(f"[{style}]{step.outcome}[/{style}] {escape(step.task_id)}{where}", highlight=False)
    if step.reason:
        first = step.reason.strip().splitlines()[0] if step.reason.strip() else ""
        console.print(f"  {escape(first)}", highlight=False, soft_wrap=True)


def print_trains(trains: list[TrainRun]) -> None:
    """Print each train's integration branch: how many results it holds, and what went back to the queue."""
    for train in trains:
        landed = train.landed
        console.print(
            f"[bold]{escape(train.branch)}[/bold]: {len(landed)} verified result(s) on "
            f"{escape(train.base)} ({train.base_commit[:12]}), head {train.head[:12]}",
            highlight=False,
        )
        if queued := queued_again([train]):
            names = ", ".join(sorted(queued))
            console.print(
                f"  queued again on it: {escape(names)}; `run-agents run --land` runs and lands them"
            )


def queued_again(trains: list[TrainRun]) -> set[str]:
    """Return the tasks the trains took out and queued again that have not landed since."""
    landed = {step.task_id for train in trains for step in train.landed}
    return {step.task_id for train in trains for step in train.taken_out} - landed


def land_after_run(
    queue: Queue,
    executor: Executor,
    *,
    config: RunnerConfig,
    root: Path,
    rerun: Callable[[], object],
    json_out: bool,
) -> list[TrainRun]:
    """`run --land`: land; while the train queued tasks again (up to `rounds`), rerun the queue and land."""
    on_step = None if json_out else print_step
    trains = run_train(queue, executor, config=config, root=root, on_step=on_step)
    for _ in range(config.train.rounds):
        if not queued_again(trains):
            break
        before = {s.task_id for t in trains for s in t.landed}
        if not json_out:
            names = ", ".join(sorted(queued_again(trains)))
            console.print(f"running again on the integration branch: {escape(names)}", highlight=False)
        rerun()
        trains = run_train(queue, executor, config=config, root=root, on_step=on_step)
        if {s.task_id for t in trains for s in t.landed} == before:
            break  # nothing new landed: running again would repeat the same
    return trains


def publish_trains_view(root: Path, config: RunnerConfig, trains: list[TrainRun], *, quiet: bool) -> None:
    """With a GitHub token: the trains' PRs as `github.pr_mode` says; a failure only warns."""
    from agent_runner.github.train_pr import publish_trains  # ~40 ms (the publisher; PyGithub lazily)

    try:
        done = publish_trains(root, config.github, trains)
    except GitHubError as exc:
        console.print(f"[yellow]Not published:[/] {escape(str(exc))}; `run-agents land` again retries")
        return
    for pull in (p for d in done for p in d.pulls if not quiet):
        console.print(f"PR {pull.number or '-'} ({pull.task_id or 'integration'}): {pull.note}", markup=False)
