"""What `list`, `show` and `diff` print about a task: attempts spent, gates, findings, the change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.queue import Queue


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def ok(repo: Path, *args: str) -> str:
    """Invoke a command in-process with --root `repo`; it must succeed; return its stdout."""
    result = CliRunner().invoke(get_app(), ["--root", str(repo), *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def queue_of(repo: Path) -> Queue:
    return Queue(repo / "tasks" / "queue.jsonl")


def run_attempt(queue: Queue, task_id: str, end: str, result: dict[str, object] | None = None) -> int:
    """Claim `task_id` and end that attempt with `end` (infra, fail or finish); return its number."""
    claim = queue.claim("w", lease_s=60, accept=lambda s: s.id == task_id)
    assert claim is not None
    if end == "infra":
        queue.release(claim.task_id, claim.attempt, "machine lost")
    elif end == "fail":
        queue.fail(claim.task_id, claim.attempt, "gates failed", result=result)
    else:
        queue.finish(claim.task_id, claim.attempt, result or {"outcome": "accepted"})
    return claim.attempt


def test_attempts_are_the_spent_ones_not_the_counter(repo: Path) -> None:
    """Re-runs after infrastructure failures do not count: list, list --json and show say used / max."""
    ok(repo, "add", "change", "-m", "Swap os.path for pathlib", "--id", "pathlib-utils")
    queue = queue_of(repo)
    for _ in range(4):
        run_attempt(queue, "pathlib-utils", "infra")
    row = json.loads(ok(repo, "list", "--json"))[0]
    assert (row["attempts"], row["max_attempts"], row["attempt"]) == (0, 3, 4)
    assert " 0/3 " in ok(repo, "list")
    assert "0 of 3 (latest #4; 4 re-runs" in ok(repo, "show", "pathlib-utils")
    assert run_attempt(queue, "pathlib-utils", "fail") == 5
    run_attempt(queue, "pathlib-utils", "finish")
    row = json.loads(ok(repo, "list", "--json"))[0]
    assert (row["status"], row["attempts"], row["attempt"]) == ("finished", 2, 6)
    assert json.loads(ok(repo, "show", "pathlib-utils", "--json"))["task"]["attempts_used"] == 2


def test_a_running_attempt_counts(repo: Path) -> None:
    """The attempt under way is one of the used ones; cancel names used / max, not the counter."""
    ok(repo, "add", "change", "-m", "x", "--id", "busy")
    queue = queue_of(repo)
    run_attempt(queue, "busy", "infra")
    assert queue.claim("w", lease_s=60) is not None
    assert json.loads(ok(repo, "list", "--json"))[0]["attempts"] == 1
    assert "(was running, attempts 1 of 3)" in ok(repo, "cancel", "busy")
