"""Batches: one gate run for a green batch; a red one is bisected down to the result that turns it red."""

from __future__ import annotations

import pytest
from train_helpers import Runner, TrainProject, git

from agent_runner.core.protocols import Slot
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Task, TaskKind
from agent_runner.core.train import StepOutcome
from agent_runner.executors.local import LocalExecutor

GATES = ["non-empty-diff", "lint-touched", "tests", "diff-policy"]
EDITS = {  # task -> (file, old, new): t3 conflicts with t1; t5 is red only on top of t4
    "t1": ("calc.py", '"start"', '"begin"'),
    "t2": ("calc.py", '"end"', '"finish"'),
    "t3": ("calc.py", '"start"', '"first"'),
    "t4": ("limits.py", "LIMIT = 10", "LIMIT = 20"),
    "t5": ("checks/limit_check.py", "", 'from limits import LIMIT\n\nassert LIMIT < 15, "LIMIT too big"\n'),
}


class CountingExecutor(LocalExecutor):
    """The local executor, counting the verify jobs it runs."""

    n_jobs = 0

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        self.n_jobs += 1
        return super().run(request, slot)


def _accepted(project: TrainProject, runner: Runner) -> None:
    """Record each edit as an accepted result on main (its branch agent/<id>), as a run would."""
    base = git(project.root, "rev-parse", "main")
    for priority, (task_id, (path, old, new)) in enumerate(reversed(EDITS.items())):
        git(project.root, "checkout", "-q", "-b", f"agent/{task_id}", base)
        file = project.root / path
        file.write_text(file.read_text().replace(old, new, 1) if old else new)
        git(project.root, "add", "-A")
        git(
            project.root,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            f"agent-runner: {task_id}",
        )
        head = git(project.root, "rev-parse", "HEAD")
        git(project.root, "checkout", "-q", "main")
        runner.queue.add(Task(id=task_id, kind=TaskKind.CHANGE, priority=priority))
        assert runner.queue.claim("test", lease_s=60) is not None
        gates = [GateResult(name=name, verdict=GateVerdict.PASS) for name in GATES]
        result = TaskResult(
            task_id=task_id, outcome=Outcome.ACCEPTED, base_commit=base, head_commit=head, gates=gates
        )
        runner.queue.finish(task_id, 1, result.for_queue())


def test_a_red_batch_is_bisected_and_only_the_culprit_goes_back(
    project: TrainProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 5: t3 conflicts (found by git, no job); t1 t2 t4 t5 are red together; halving finds t5.

    The failing check prints a secret's value: the worker was sent none, the coordinator masks it.
    """
    monkeypatch.setenv("TRAIN_SECRET", "LIMIT too big")
    runner = Runner(project)
    train_settings = runner.config.train.model_copy(update={"batch": 5})
    runner.config = runner.config.model_copy(update={"train": train_settings, "secret_env": ["TRAIN_SECRET"]})
    runner.executor.close()
    runner.executor = executor = CountingExecutor(
        workdir=project.root / ".agent-runner", workers=1, cwd=project.root
    )
    try:
        _accepted(project, runner)
        train = runner.land()
    finally:
        executor.close()
    outcomes = [(step.task_id, step.outcome) for step in train.steps]
    assert outcomes == [
        ("t3", StepOutcome.CONFLICT), ("t1", StepOutcome.LANDED), ("t2", StepOutcome.LANDED),
        ("t4", StepOutcome.LANDED), ("t5", StepOutcome.RED),
    ]  # fmt: skip
    assert executor.n_jobs == 5  # [t1 t2 t4 t5] red, [t1 t2] green, [t4 t5] red, [t4] green, [t5] red
    reason = train.steps[-1].reason
    assert "FAILED checks/limit_check.py: [REDACTED]" in reason and "lint-touched" not in reason
    assert "LIMIT too big" not in (project.tasks / "queue.jsonl").read_text()
    assert "LIMIT too big" not in train.model_dump_json()  # the red step's gate records (for --json)
