"""The integration train end to end: real worker subprocesses, real git, scripted agents."""

from __future__ import annotations

from pathlib import Path

from train_helpers import TrainProject, git

from agent_runner.config.runner import RunnerConfig, load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.coordinator.train import land
from agent_runner.core.task import TaskStatus
from agent_runner.core.train import StepOutcome, TrainRun
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.store import Queue


class Runner:
    """Runs the queue and the train of a project in this process, on one local executor."""

    def __init__(self, project: TrainProject) -> None:
        self.root = project.root
        self.config: RunnerConfig = load_config(self.root)
        self.queue: Queue = open_queue(self.root, self.config)
        state = self.config.path(self.root, "state_dir")
        self.executor = LocalExecutor(workdir=state, workers=2, cwd=self.root)

    def run(self) -> None:
        Scheduler(self.queue, self.executor, config=self.config, root=self.root).run()

    def land(self) -> TrainRun:
        (train,) = land(self.queue, self.executor, config=self.config, root=self.root)
        return train


def _outcomes(train: TrainRun) -> list[tuple[str, StepOutcome]]:
    return [(step.task_id, step.outcome) for step in train.steps]


def test_train_lands_compatible_results_and_requeues_the_others_until_all_are_in(
    project: TrainProject,
) -> None:
    """t3 conflicts with t1, t5 is red only with t4: both go again on the branch, then all five land green."""
    project.five_tasks()
    runner = Runner(project)
    try:
        runner.run()
        assert {s.status for s in runner.queue.refresh().values()} == {TaskStatus.FINISHED}
        first = runner.land()
        assert _outcomes(first) == [
            ("t1", StepOutcome.LANDED), ("t2", StepOutcome.LANDED), ("t3", StepOutcome.CONFLICT),
            ("t4", StepOutcome.LANDED), ("t5", StepOutcome.RED),
        ]  # fmt: skip
        states = runner.queue.refresh()
        t3, t5 = states["t3"], states["t5"]
        assert t3.status == t5.status == TaskStatus.QUEUED and t3.spent == t5.spent == 0
        assert "calc.py" in t3.reason and "LIMIT too big" in t5.reason
        assert t3.task is not None and t3.task.base == "agent/integration"
        runner.run()  # their new attempts, on the integration branch
        prompt = (project.root / ".agent-runner/runs/t5/2/trajectory.jsonl").read_text()
        assert "Why this task runs again" in prompt and "LIMIT too big" in prompt
        second = runner.land()
        assert _outcomes(second)[5:] == [("t3", StepOutcome.LANDED), ("t5", StepOutcome.LANDED)]
        again = runner.land()
        assert again.steps == second.steps and again.head == second.head  # nothing lands twice
    finally:
        runner.executor.close()
    log = git(project.root, "log", "--format=%s", "main..agent/integration").splitlines()
    assert sorted(line.split(":")[1].strip() for line in log) == ["t1", "t2", "t3", "t4", "t5"]
    calc = git(project.root, "show", "agent/integration:calc.py")
    assert '"first"' in calc and '"finish"' in calc
    assert "LIMIT < 25" in git(project.root, "show", "agent/integration:checks/limit_check.py")
    assert git(project.root, "rev-parse", "agent/integration") == second.head


def test_land_is_a_no_op_without_accepted_results(project: TrainProject) -> None:
    """With nothing accepted, the integration branch sits on the base and no event is written."""
    runner = Runner(project)
    try:
        train = runner.land()
    finally:
        runner.executor.close()
    main = git(project.root, "rev-parse", "main")
    assert train.steps == [] and train.head == main == git(project.root, "rev-parse", "agent/integration")
    assert not Path(project.root / "tasks" / "queue.jsonl").exists() or not project.queue_events()
