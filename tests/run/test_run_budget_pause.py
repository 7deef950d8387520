"""A run's budgets pause instead of kill: running attempts stop at their next model call, queued again with
no attempt spent; the next run finishes the rest, each task landing once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.coordinator.budget import Budget, BudgetKind
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.pause import BudgetWatch, PauseLedger
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.task import Task, TaskKind
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.state import TaskState
from agent_runner.testing.scripts import bash_turn, finish_turn, write_command

START = 1_900_000_000.0  # a fixed "now" for the time budget's clock


def pause_file(project: Project, task_id: str, attempt: int = 1) -> Path:
    """Return where the coordinator asks an attempt of `task_id` to pause."""
    return project.root / ".agent-runner" / "runs" / task_id / str(attempt) / "pause"


def waits_for_pause(project: Project, task_id: str, *, cost: float = 0.0, first: str = "true") -> list[Any]:
    """Turns: one model call (billed `cost`) whose bash runs `first`, then waits until the coordinator asks
    this attempt to pause; a second turn that would land a change if the pause did not stop it."""
    wait = f"{first}; while [ ! -e {pause_file(project, task_id)} ]; do sleep 0.05; done"
    billed = {"usage": {"input_tokens": 1000, "output_tokens": 100}, "cost_usd": cost}
    return [
        {**bash_turn(wait), **billed},
        bash_turn(write_command(f"{task_id}.py", "x = 1\n")),
        finish_turn(),
    ]


def scheduled(
    project: Project, *, clock: Callable[[], float] | None = None, watch: bool = False, **overrides: Any
) -> tuple[RunSummary, list[RunEvent]]:
    """Run the queue once with local workers (the time budget on `clock`); return the summary and events."""
    config = load_config(project.root, overrides=overrides)
    executor = LocalExecutor(workdir=config.path(project.root, "state_dir"), workers=config.workers)
    events: list[RunEvent] = []
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    if clock is not None:
        scheduler.budget.clock = clock
    try:
        return scheduler.run(watch=watch), events
    finally:
        executor.close()


def states(project: Project) -> dict[str, TaskState]:
    """Return the queue file's state of every task."""
    return open_queue(project.root, load_config(project.root)).refresh()


def test_cost_budget_pauses_running_attempts_and_the_next_run_finishes_the_rest(project: Project) -> None:
    """$0.06 spent by two attempts in flight crosses a $0.05 budget: both stop at their next model call,
    queued with no attempt spent, the third task waits with the reason; the summary names the budget and
    the command; a second run lands every task once."""
    for task_id in ("a", "b"):
        model = project.script(task_id, waits_for_pause(project, task_id, cost=0.03))
        project.task(task_id, model, priority=1, limits={"cost_usd": 0.04})
    project.task("c", project.edit_script("c", "c.py", "c = 1\n"), limits={"cost_usd": 0.04})
    first = project.invoke("run", "--budget", "0.05", "--no-publish")
    assert first.exit_code == 3, first.output  # a budget stopped it with tasks left
    assert "stopped: the cost budget is reached: $0.06 spent of $0.05\n" in first.output, first.output
    assert "3 task(s) left (2 paused at a model call, no attempt spent)\n" in first.output
    assert "go on: run-agents run --budget 0.05\n" in first.output
    after = states(project)
    for task_id in ("a", "b"):
        state = after[task_id]
        assert state.status == "queued" and state.n_attempts_used == 0 and state.attempt == 1
        assert state.reason.startswith("paused at a model call, no attempt spent: the cost budget is reached")
        assert round(state.cost_usd, 4) == 0.03 and state.result is not None
        assert state.result.model_calls == 1 and state.result.exit_status == "paused"
        assert Path(state.result.trajectory_path or "").is_file()  # its work so far is kept to read
        assert Path(state.result.checkout_path or "").is_dir()
    assert after["c"].status == "queued" and after["c"].attempt == 0
    assert after["c"].reason.startswith("waiting: the cost budget is reached: $0.06 spent of $0.05")
    listed = {row["id"]: row for row in json.loads(project.invoke("list", "--json").stdout)}
    assert listed["a"]["status"] == "queued" and listed["a"]["attempts"] == 0
    assert listed["c"]["reason"] == after["c"].reason
    for task_id in ("a", "b"):
        project.script(task_id, [bash_turn(write_command(f"{task_id}.py", "x = 1\n")), finish_turn()])
    second = project.invoke("run", "--no-publish")
    assert second.exit_code == 0, second.output
    finished = [e["task"] for e in project.queue_events() if e["type"] == "finished"]
    assert sorted(finished) == ["a", "b", "c"]
    for task_id in ("a", "b", "c"):
        assert git(project.root, "rev-list", "--count", f"main..agent/{task_id}") == "1"
    assert states(project)["a"].attempt == 2 and states(project)["a"].n_attempts_used == 1


def test_time_budget_refuses_an_attempt_that_cannot_end_in_time(project: Project) -> None:
    """`--for 1h`: a task whose attempt may take 75 min (minutes 30) never starts; one bound to 30 min
    runs; the run stops on the time budget, saying so, and the long task waits with the reason."""
    project.task("long", project.edit_script("long", "l.py", "l = 1\n"), limits={"minutes": 30})
    short = project.edit_script("short", "s.py", "s = 1\n")
    project.task("short", short, limits={"minutes": 10, "attempt_minutes": 30})
    summary, events = scheduled(project, clock=lambda: START, run_for="1h")
    assert [e.task for e in events if e.kind == "started"] == ["short"]
    assert summary.finished == ["short"] and summary.budget_stop is not None
    stop = summary.budget_stop
    assert stop.budget == BudgetKind.TIME and stop.n_queued == 1 and stop.n_paused == 0
    assert "less than the next attempt's 75 min wall-clock limit" in stop.message
    assert stop.command == "run-agents run --for 1h"
    assert states(project)["long"].reason.startswith("waiting: the time budget leaves 60 min")
    assert summary.to_json()["budget_stop"]["budget"] == "time"


def test_time_budget_ending_mid_run_pauses_the_running_attempt(project: Project) -> None:
    """The clock passes the `--until` end once the agent's first call is made: the attempt pauses at its
    next model call, queued again unspent, and the summary says the time budget stopped the run."""
    passed = project.root.parent / "passed"
    model = project.script("t", waits_for_pause(project, "t", first=f"touch {passed}"))
    project.task("t", model, limits={"minutes": 5, "attempt_minutes": 20})
    summary, events = scheduled(
        project, clock=lambda: START + (7200 if passed.exists() else 0), run_until=_clock_in(START, 60)
    )
    assert [e.task for e in events if e.kind == "paused"] == ["t"]
    assert summary.budget_stop is not None and summary.budget_stop.budget == BudgetKind.TIME
    assert summary.budget_stop.n_paused == 1
    state = states(project)["t"]
    assert state.status == "queued" and state.n_attempts_used == 0
    assert "the time budget ended at" in state.reason


def test_watch_ends_when_its_time_budget_does(project: Project) -> None:
    """`watch --for 1h` keeps running until the hour is over, then ends, saying why."""
    times = iter([START])  # the start; every later reading is two hours on
    summary, events = scheduled(project, clock=lambda: next(times, START + 7200), run_for="1h", watch=True)
    assert summary.budget_stop is not None and summary.budget_stop.budget == BudgetKind.TIME
    assert [e.message for e in events if e.kind == "budget"] == [
        f"the time budget ended at {_clock_in(START, 60)} (--for 1h); no new attempt starts"
    ]


def test_a_pause_nobody_asked_for_is_a_failure(project: Project) -> None:
    """An agent (no sandbox here) that writes its own pause file is not given a free re-run: it fails."""
    turns = [bash_turn(f"echo stop > {pause_file(project, 'sly')}"), finish_turn()]
    project.task("sly", project.script("sly", turns), max_attempts=1)
    summary, _ = scheduled(project)
    assert "did not ask for" in summary.failed["sly"]
    assert summary.budget_stop is None


def _clock_in(now: float, minutes: int) -> str:
    """Return the local HH:MM `minutes` after `now`."""
    return time.strftime("%H:%M", time.localtime(now + minutes * 60))


def test_where_running_spend_is_unseen_their_cost_limits_count(tmp_path: Path) -> None:
    """SSH and Ray attempts report their spend when they end: a new task must fit beside their cost limits
    (the budget is never passed there); local attempts count what their trajectories say they spent."""
    config = load_config(tmp_path, overrides={"budget_usd": 1.0}, environ={})
    running = [(("r", 1), Task(id="r", kind=TaskKind.CHANGE, limits={"cost_usd": 0.6}))]
    task = Task(id="n", kind=TaskKind.CHANGE, limits={"cost_usd": 0.5})
    for executor, fits in ((object(), False), (LocalExecutor(workdir=tmp_path, fork=False), True)):
        budget = Budget(config)
        watch = BudgetWatch(budget, executor, state_dir=tmp_path, emit=print, ledger=PauseLedger())  # type: ignore[arg-type]
        assert budget.fits(watch.committed(0.1, running), task) is fits
