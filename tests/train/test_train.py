"""The integration train end to end: real worker subprocesses, real git, scripted agents."""

from __future__ import annotations

import json

from train_helpers import Runner, TrainProject, git, sed_command

from agent_runner.core.task import TaskStatus
from agent_runner.core.train import StepOutcome, TrainRun


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
        runner.queue.compact()  # the events are gone; the tasks' states still say where each landed
        compacted = runner.land()
        assert compacted.head == second.head and len(compacted.landed) == 5
    finally:
        runner.executor.close()
    log = git(project.root, "log", "--format=%s", "main..agent/integration").splitlines()
    assert sorted(line.split(":")[1].strip() for line in log) == ["t1", "t2", "t3", "t4", "t5"]
    calc = git(project.root, "show", "agent/integration:calc.py")
    assert '"first"' in calc and '"finish"' in calc
    assert "LIMIT < 25" in git(project.root, "show", "agent/integration:checks/limit_check.py")
    assert git(project.root, "rev-parse", "agent/integration") == second.head


def test_run_land_runs_a_requeued_task_again_and_lands_it(project: TrainProject) -> None:
    """`run --land`: the conflicting task runs again on the integration branch and lands in the same run."""
    project.shell_task("t1", sed_command('s/"start"/"begin"/', "calc.py"), priority=50)
    project.shell_task("t3", sed_command('s/"(start|begin)"/"first"/', "calc.py"), priority=30)
    done = project.cli("run", "--land", "--json")
    assert done.returncode == 0, done.stderr
    trains = json.loads(done.stdout.splitlines()[-1])["trains"]
    steps = [(s["task_id"], s["outcome"]) for s in trains[0]["steps"]]
    assert steps == [("t1", "landed"), ("t3", "conflict"), ("t3", "landed")]
    assert '"first"' in git(project.root, "show", "agent/integration:calc.py")
    shown = project.cli("land")
    assert shown.returncode == 0 and "agent/integration: 2 verified result(s) on main" in shown.stdout


def test_a_landed_commit_lost_to_gc_is_a_clear_error_naming_the_way_on(project: TrainProject) -> None:
    """The integration branch deleted, then `git gc`: the queue names a train commit (t2's: t1's is its own
    branch's) the repo lost. `land`
    says so and how to go on (requeue), instead of failing on git's "bad revision" every time."""
    project.shell_task("t1", sed_command('s/"start"/"begin"/', "calc.py"), priority=50)
    project.shell_task("t2", sed_command('s/"end"/"finish"/', "calc.py"), priority=40)
    runner = Runner(project)
    try:
        runner.run()
        assert [s.outcome for s in runner.land().steps] == [StepOutcome.LANDED] * 2
    finally:
        runner.executor.close()
    git(project.root, "update-ref", "-d", "refs/heads/agent/integration")
    git(project.root, "reflog", "expire", "--expire=now", "--all")
    git(project.root, "gc", "-q", "--prune=now")
    again = project.cli("land")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "no longer in" in again.stderr and "run-agents requeue t2" in again.stderr, again.stderr
    assert project.cli("requeue", "t2").returncode == 0
    assert project.cli("land").returncode == 0  # on again: t1 still on the train, t2 waits for its run
