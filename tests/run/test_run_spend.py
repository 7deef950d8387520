"""Every billed model call counts in the task's cost, the run's total and the budgets, however it ended."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from run_helpers import Project
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.protocols import Slot
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.scripts import bash_turn

BILLED = {"usage": {"input_tokens": 1000, "output_tokens": 100}, "cost_usd": 0.005}


def billed(turn: dict[str, Any]) -> dict[str, Any]:
    """Return `turn` reporting one billed call of $0.005."""
    return {**turn, **BILLED}


def scheduled(project: Project, **overrides: Any) -> tuple[RunSummary, list[RunEvent]]:
    """Run the queue once with local workers; return the summary and the events."""
    config = load_config(project.root, overrides=overrides)
    state = config.path(project.root, "state_dir")
    executor = LocalExecutor(workdir=state, workers=config.workers, cwd=project.root)
    events: list[RunEvent] = []
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    try:
        return scheduler.run(), events
    finally:
        executor.close()


def listed_cost(project: Project, task_id: str) -> float:
    """Return the cost `list --json` shows for a task."""
    out = CliRunner().invoke(get_app(), ["--root", str(project.root), "list", "--json"]).stdout
    return float(next(row for row in json.loads(out) if row["id"] == task_id)["cost_usd"] or 0)


def test_spend_before_a_model_outage_counts_everywhere(project: Project) -> None:
    """Two billed calls, then the API stays unavailable: the infrastructure failure keeps its $0.0100 in
    the task's cost, the run's total and its tokens."""
    turns = [billed(bash_turn("true")), billed(bash_turn("true")), {"error": "unavailable"}]
    project.task("outage", project.script("outage", turns))
    summary, events = scheduled(project, infra_retries=0)
    assert "model unavailable" in summary.failed["outage"]
    assert round(summary.cost_usd, 4) == 0.01 and summary.tokens == 2200
    state = open_queue(project.root, load_config(project.root)).refresh()["outage"]
    assert round(state.cost_usd, 4) == 0.01 and state.result is not None
    assert state.result.model_calls == 2
    assert round(listed_cost(project, "outage"), 4) == 0.01
    failed = next(e for e in events if e.kind == "failed")
    assert failed.result is not None and round(failed.result.cost_usd or 0, 4) == 0.01


def test_spend_of_a_worker_that_died_counts_from_its_trajectory(project: Project) -> None:
    """A worker killed after a billed call leaves no result; its trajectory's $0.005 still counts."""
    turns = [billed(bash_turn("kill -9 $PPID"))]
    project.task("killed", project.script("killed", turns))
    summary, _ = scheduled(project, infra_retries=0)
    assert "killed" in summary.failed and round(summary.cost_usd, 4) == 0.005
    state = open_queue(project.root, load_config(project.root)).refresh()["killed"]
    assert round(state.cost_usd, 4) == 0.005


def test_spend_of_an_outage_counts_against_the_run_budget(project: Project) -> None:
    """The $0.0100 an outage billed is in the budget: a second task whose cap no longer fits never starts."""
    turns = [billed(bash_turn("true")), billed(bash_turn("true")), {"error": "unavailable"}]
    project.task("outage", project.script("outage", turns), priority=1, limits={"cost_usd": 0.02})
    project.task("next", project.edit_script("next", "n.py", "n = 1\n"), limits={"cost_usd": 0.015})
    summary, events = scheduled(project, infra_retries=0, budget_usd=0.02, workers=1)
    assert [e.task for e in events if e.kind == "started"] == ["outage"]
    assert any(e.kind == "budget" for e in events) and "next" not in summary.finished


class FarExecutor(LocalExecutor):
    """Local workers posing as another machine's: their trajectories are not in the runner's state folder."""

    def slots(self) -> list[Slot]:
        return [Slot(f"far/{i + 1}", machine="far") for i in range(self.n_workers)]


def test_spend_of_a_remote_worker_that_died_reads_unknown(project: Project, tmp_path: Path) -> None:
    """A remote worker killed after a billed call takes its trajectory along: the cost reads unknown in the
    queue state, `list` and the run summary, never a silent $0; the attempt is not spent."""
    turns = [billed(bash_turn("kill -9 $PPID"))]
    project.task("far-killed", project.script("far-killed", turns))
    config = load_config(project.root, overrides={"infra_retries": 0})
    executor = FarExecutor(workdir=tmp_path / "far", workers=1, cwd=project.root)
    queue = open_queue(project.root, config)
    try:
        summary = Scheduler(queue, executor, config=config, root=project.root).run()
    finally:
        executor.close()
    assert "far-killed" in summary.failed
    assert summary.cost.n_unknown == 1 and summary.cost.text() == "unknown"
    state = open_queue(project.root, load_config(project.root)).refresh()["far-killed"]
    assert state.cost.usd is None and state.n_unknown_cost == 1 and state.n_attempts_used == 0
    out = CliRunner().invoke(get_app(), ["--root", str(project.root), "list", "--json"]).stdout
    assert next(row for row in json.loads(out) if row["id"] == "far-killed")["cost_usd"] is None
