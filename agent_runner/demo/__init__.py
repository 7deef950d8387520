"""The keyless tour: a throwaway repo with one task of each kind, run on the local executor with 2 workers.

Steps that need a model use a real one when a key is set, otherwise the recorded scripts shipped here
(`agent_runner/demo/*.yaml`, replayed by ScriptedModel); fix-lint's deterministic step needs no model at all.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.demo.project import TASKS, create_project
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.worker.trajectory import read_trajectory

RECORDED = "recorded"
KEY_MODELS = {"ANTHROPIC_API_KEY": "anthropic:claude-sonnet-5-5", "OPENAI_API_KEY": "openai:gpt-5-mini"}


@dataclass
class DemoRun:
    """What the demo did: where, with which model, the run summary, each task's state and the branches."""

    root: Path
    model: str
    summary: RunSummary
    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    model_calls: dict[str, int] = field(default_factory=dict)
    rounds: dict[str, int] = field(default_factory=dict)
    branches: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_recorded(self) -> bool:
        """Whether model steps replayed recorded scripts."""
        return self.model == RECORDED


def pick_model(model: str | None, environ: Mapping[str, str]) -> str:
    """Return the model spec to use: the one given, a real one when a key is set, else 'recorded'."""
    if model:
        return model
    return next((spec for key, spec in KEY_MODELS.items() if environ.get(key)), RECORDED)


def run_demo(
    folder: Path,
    *,
    model: str | None = None,
    workers: int = 2,
    on_event: Callable[[RunEvent], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> DemoRun:
    """Create the demo repo in `folder`, queue its tasks and run them; return what happened."""
    chosen = pick_model(model, os.environ if environ is None else environ)
    default_model = chosen if chosen != RECORDED else "anthropic:claude-sonnet-5-5"
    root = create_project(folder.resolve(), model=default_model, recorded=chosen == RECORDED)
    config = load_config(root, overrides={"workers": workers}, environ={})
    queue = open_queue(root, config)
    state = config.path(root, "state_dir")
    executor = LocalExecutor(workdir=state, workers=workers, forward_env=config.forward_env, cwd=root)
    try:
        summary = Scheduler(queue, executor, config=config, root=root, on_event=on_event).run()
    finally:
        executor.close()
    run = DemoRun(root=root, model=chosen, summary=summary, branches=branches(root))
    for task_id, task_state in queue.refresh().items():
        run.statuses[task_id] = str(task_state.status)
        run.reasons[task_id] = task_state.reason
        result = task_state.result
        run.model_calls[task_id] = result.model_calls if result is not None else 0
        run.rounds[task_id] = agent_rounds(result.trajectory_path if result is not None else None)
    return run


def agent_rounds(trajectory: str | None) -> int:
    """Return how many times the agent was prompted: the task, then one per gate report sent back."""
    if not trajectory or not Path(trajectory).exists():
        return 0
    return sum(1 for record in read_trajectory(Path(trajectory)) if record.get("type") == "user")


def branches(root: Path) -> list[tuple[str, str]]:
    """Return (branch, subject of its last commit) for every agent/ branch of the repo."""
    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short)\t%(subject)", "refs/heads/agent/"],
        cwd=root, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return [tuple(line.split("\t", 1)) for line in out.splitlines() if "\t" in line]  # type: ignore[misc]


def needs_model(task_id: str) -> bool:
    """Return whether a demo task has a model step (fix-lint on auto-fixable code has none)."""
    return any(t["id"] == task_id and t.get("script") for t in TASKS)
