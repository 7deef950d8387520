"""The train's queue events: the one move from finished back to queued, and a landing once per train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runner.core.errors import StaleAttemptError
from agent_runner.core.task import Task, TaskKind, TaskStatus
from agent_runner.queue.store import Queue


def _finished(tmp_path: Path) -> Queue:
    """A queue whose task `a` finished attempt 1."""
    queue = Queue(tmp_path / "queue.jsonl")
    queue.add(Task(id="a", kind=TaskKind.CHANGE), file="tasks/a.md", digest="d1")
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    queue.finish("a", 1, {"task_id": "a", "outcome": "accepted", "head_commit": "c" * 40})
    return queue


def _requeued(**fields: Any) -> dict[str, Any]:
    definition = {"id": "a", "kind": "change", "base": "agent/integration", "instructions": "again"}
    event = {"type": "train_requeued", "task": "a", "attempt": 1, "train": "agent/integration@x"}
    return {**event, "outcome": "conflict", "reason": "conflicts in calc.py", "def": definition, **fields}


def test_train_requeue_moves_finished_to_queued_without_spending_an_attempt(tmp_path: Path) -> None:
    """The new attempt starts from the integration branch, told why; the accepted one is not counted."""
    queue = _finished(tmp_path)
    state = queue.train_step(_requeued(file="tasks/a.md", digest="d1"))
    assert state.status == TaskStatus.QUEUED and state.spent == 0 and state.n_attempts_used == 0
    assert state.reason == "conflicts in calc.py" and state.task is not None
    assert state.task.base == "agent/integration" and state.digest == "d1"
    claim = queue.claim("w", lease_s=60)
    assert claim is not None and claim.attempt == 2
    assert not queue.add(Task(id="a", kind=TaskKind.CHANGE), file="tasks/a.md", digest="d1")  # file unchanged


def test_fold_refuses_train_moves_from_elsewhere(tmp_path: Path) -> None:
    """Only a finished task's last attempt moves, once per train; a line written by hand is skipped."""
    queue = _finished(tmp_path)
    with pytest.raises(StaleAttemptError, match="attempt 2"):
        queue.train_step(_requeued(attempt=2))
    landed = {
        "type": "train_landed",
        "task": "a",
        "attempt": 1,
        "train": "agent/integration@x",
        "commit": "d",
    }
    queue.train_step(landed)
    assert queue.states["a"].train_commit == "d"
    with pytest.raises(StaleAttemptError, match="already landed"):
        queue.train_step(_requeued())
    queue.record(**_requeued())  # appended without the check: the fold refuses it
    fresh = Queue(tmp_path / "queue.jsonl")
    assert fresh.refresh()["a"].status == TaskStatus.FINISHED
    assert [bad.problem for bad in fresh.corrupt] == [
        "train_requeued event for 'a', already landed in agent/integration@x"
    ]


def test_a_requeue_by_hand_or_a_new_result_clears_the_train(tmp_path: Path) -> None:
    """`requeue` and a later finished attempt forget the train: the result is a candidate again."""
    queue = _finished(tmp_path)
    queue.train_step({"type": "train_landed", "task": "a", "attempt": 1, "train": "t@x", "commit": "d"})
    state = queue.requeue("a")
    assert state.train is None and state.train_commit is None
