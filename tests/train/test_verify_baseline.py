"""Verify jobs hand their green test run on: the next job of a train takes it as its baseline."""

from __future__ import annotations

from pathlib import Path

from train_helpers import git

from agent_runner.config.runner import load_config
from agent_runner.coordinator.landing import LandingRules
from agent_runner.coordinator.train_step import Pick, VerifyContext, apply_and_verify
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.core.task import Task, TaskKind
from agent_runner.executors.local import LocalExecutor

PYPROJECT = '[tool.agent-runner]\nsandbox = "none"\ntest = "python -m pytest -q"\n'
GATES = [
    GateResult(name=g, verdict=GateVerdict.PASS)
    for g in ("non-empty-diff", "lint-touched", "tests", "diff-policy")
]


def _repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / ".gitignore").write_text("__pycache__/\n.agent-runner/\n")
    (root / "tests" / "test_base.py").write_text("def test_base():\n    assert True\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return root


def _pick(root: Path, name: str) -> Pick:
    """A result on main that adds tests/test_<name>.py, as its branch agent/<name>."""
    base = git(root, "rev-parse", "main")
    git(root, "checkout", "-q", "-b", f"agent/{name}")
    (root / "tests" / f"test_{name}.py").write_text(f"def test_{name}():\n    assert True\n")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"agent-runner: {name}")
    head = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")
    result = TaskResult(
        task_id=name, outcome=Outcome.ACCEPTED, base_commit=base, head_commit=head, gates=GATES
    )
    return Pick(Task(id=name, kind=TaskKind.CHANGE), result)


def _tests_details(gates: list[GateResult]) -> str:
    return next(g.details for g in gates if g.name == "tests")


def test_the_next_job_on_a_verified_head_reuses_its_test_run_as_baseline(tmp_path: Path) -> None:
    """Job 1 (main + one) measures its baseline; job 2 (on job 1's head) reuses job 1's green run."""
    root = _repo(tmp_path)
    one, two = _pick(root, "one"), _pick(root, "two")
    config = load_config(root)
    executor = LocalExecutor(workdir=root / ".agent-runner", workers=1, cwd=root)
    ctx = VerifyContext(
        executor, executor.slots()[0], root, "agent/integration", config, LandingRules.of(config)
    )
    try:
        first, verdict = apply_and_verify(ctx, git(root, "rev-parse", "main"), [one])
        assert verdict is not None and verdict.is_green, verdict
        assert "reused" not in _tests_details(verdict.gates)
        git(root, "update-ref", "refs/heads/agent/integration", first.head)  # as the train moves it
        _, verdict = apply_and_verify(ctx, first.head, [two])
    finally:
        executor.close()
    assert verdict is not None and verdict.is_green, verdict
    details = _tests_details(verdict.gates)
    assert "baseline reused from this machine's cache" in details
    assert verdict.gates[1].before == {"passed": 2, "failed": 0} and verdict.gates[1].after["passed"] == 3
