"""Gates inside a whole job (agent_runner.worker.job.run_job) with a scripted model on the calc fixture."""

from __future__ import annotations

from pathlib import Path

import yaml

from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import Task
from agent_runner.worker.job import run_job
from agent_runner.worker.trajectory import read_trajectory

BREAK = (
    "sed -i 's/return None/return 0/' calc/core.py"
    " && printf '\\n\\ndef sub(a, b):\\n    return a - b\\n' >> calc/core.py"
)
REPAIR = "sed -i 's/return 0$/return None/' calc/core.py"


def _request(repo: Path, task: Task, model: str, test_command: str) -> WorkRequest:
    config = {"test": test_command, "sandbox": "none", "keep_checkouts": "always"}
    return WorkRequest(task=task, repo=str(repo), base="main", model=model, config=config)


def _script(path: Path, *commands: str) -> str:
    turns = []
    for command in commands:
        turns.append({"text": "working", "tool_calls": [{"name": "bash", "arguments": {"command": command}}]})
        turns.append({"text": "done", "tool_calls": [{"name": "finish", "arguments": {"summary": command}}]})
    path.write_text(yaml.safe_dump({"turns": turns}))
    return f"scripted:{path}"


def test_auto_fixable_lint_needs_no_model_and_no_key(
    calc_repo: Path, tmp_path: Path, test_command: str
) -> None:
    """fix-lint on only auto-fixable violations is accepted with zero model calls and no API key set."""
    task = Task(id="fmt", kind="fix-lint", paths=["calc/fmt.py"])
    result = run_job(
        _request(calc_repo, task, "anthropic:claude-test", test_command), workdir=tmp_path / "state"
    )
    assert result.outcome == Outcome.ACCEPTED, result.reason
    assert result.model_calls == 0
    assert result.head_commit and result.head_commit != result.base_commit
    lint = next(g for g in result.gates if g.name == "lint-targets")
    assert lint.before["violations"] >= 4 and lint.after["violations"] == 0


def test_broken_test_is_reflected_back_and_repaired(
    calc_repo: Path, tmp_path: Path, test_command: str
) -> None:
    """A change breaking a passing test gets the gate report; the scripted repair in round two is accepted."""
    task = Task(id="sub", kind="change", instructions="Add calc.core.sub(a, b).")
    model = _script(tmp_path / "script.yaml", BREAK, REPAIR)
    result = run_job(_request(calc_repo, task, model, test_command), workdir=tmp_path / "state")
    assert result.outcome == Outcome.ACCEPTED, result.reason
    assert result.model_calls == 4
    records = read_trajectory(Path(result.trajectory_path or ""))
    users = [str(r) for r in records if r["type"] == "user"]
    assert len(users) == 2  # the task, then the gate report of round one
    assert "test_divide_by_zero" in users[1]
    assert len([r for r in records if r["type"] == "end"]) == 2
    assert {g.name: g.verdict.value for g in result.gates}["tests"] == "pass"


def test_unrepaired_break_fails_with_the_gate_report(
    calc_repo: Path, tmp_path: Path, test_command: str
) -> None:
    """With no reflection rounds left the task is rejected and the reason names the failing test."""
    task = Task(id="sub2", kind="change", instructions="Add sub.", reflection_rounds=0)
    result = run_job(
        _request(calc_repo, task, _script(tmp_path / "s.yaml", BREAK), test_command),
        workdir=tmp_path / "state",
    )
    assert result.outcome == Outcome.REJECTED
    assert "test_divide_by_zero" in result.reason
