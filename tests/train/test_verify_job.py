"""The verify job: commits the coordinator made, checked by a worker subprocess; no agent, no model."""

from __future__ import annotations

from train_helpers import TrainProject, git

from agent_runner.config.runner import load_config
from agent_runner.coordinator.landing import LandingRules
from agent_runner.coordinator.train_step import Pick, VerifyContext, apply_and_verify
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.core.task import Task, TaskKind
from agent_runner.executors.local import LocalExecutor

GATES = [
    GateResult(name=name, verdict=GateVerdict.PASS)
    for name in ("non-empty-diff", "lint-touched", "tests", "diff-policy")
]


def _result(project: TrainProject, task_id: str, path: str, old: str, new: str) -> Pick:
    """Commit an edit on main as branch agent/<id> (as a landed attempt would) and return it as a pick."""
    root = project.root
    base = git(root, "rev-parse", "main")
    git(root, "checkout", "-q", "-b", f"agent/{task_id}")
    file = root / path
    file.write_text(file.read_text().replace(old, new))
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", f"agent-runner: {task_id}")
    head = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")
    task = Task(id=task_id, kind=TaskKind.CHANGE, title=task_id)
    result = TaskResult(
        task_id=task_id, outcome=Outcome.ACCEPTED, base_commit=base, head_commit=head, gates=GATES
    )
    return Pick(task, result)


def _context(project: TrainProject) -> VerifyContext:
    config = load_config(project.root)
    state = config.path(project.root, "state_dir")
    executor = LocalExecutor(workdir=state, workers=1, fork=False, cwd=project.root)
    slot = executor.slots()[0]
    return VerifyContext(executor, slot, project.root, "main", config, LandingRules.of(config))


def test_compatible_results_verify_green_and_a_conflict_is_found_by_git(project: TrainProject) -> None:
    """Two edits of one function apply and pass on a worker; a third on the same line conflicts (no job)."""
    one = _result(project, "one", "calc.py", '"start"', '"begin"')
    two = _result(project, "two", "calc.py", '"end"', '"finish"')
    three = _result(project, "three", "calc.py", '"start"', '"first"')
    ctx = _context(project)
    onto = git(project.root, "rev-parse", "main")
    prepared, verdict = apply_and_verify(ctx, onto, [one, two, three])
    ctx.executor.close()
    assert verdict is not None and verdict.is_green, verdict
    assert [a.pick.task.id for a in prepared.applied] == ["one", "two"]
    assert [(c.pick.task.id, c.files) for c in prepared.conflicts] == [("three", ["calc.py"])]
    text = git(project.root, "show", f"{prepared.head}:calc.py")
    assert '"begin"' in text and '"finish"' in text
    assert {g.name for g in verdict.gates} == {"lint-touched", "tests"}
