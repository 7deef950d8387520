"""A path a record names (a result's trajectory_path, in the queue or from another machine) is read only
when it is a regular file named like a trajectory: a PR body, the report and `show` never show another file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from agent_runner.core.task import Task, TaskKind
from agent_runner.github.body import trajectory_excerpt
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import write_report

PRIVATE = "root:x:0:0:private-line-4242:/root:/bin/bash"


@pytest.fixture
def private(tmp_path: Path) -> Path:
    """A host file that is not a trajectory but reads like one (a JSON-lines history of another tool)."""
    path = tmp_path / "host" / "history.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"type": "user", "text": PRIVATE}) + "\n", encoding="utf-8")
    return path


def _named(tmp_path: Path, private: Path) -> dict[str, Path]:
    link = tmp_path / "links" / "trajectory.jsonl"
    link.parent.mkdir()
    os.symlink(private, link)
    return {"other file": private, "link named like one": link}


def test_a_pr_body_shows_no_file_but_a_trajectory(tmp_path: Path, private: Path) -> None:
    """The excerpt of a result naming /etc/passwd (or a link named trajectory.jsonl to it) is empty."""
    for name, path in _named(tmp_path, private).items():
        assert PRIVATE not in trajectory_excerpt(str(path)), name
    real = tmp_path / "runs" / "trajectory.jsonl"
    real.parent.mkdir()
    real.write_text(json.dumps({"type": "end", "exit_status": "finished"}) + "\n", encoding="utf-8")
    assert "finished" in trajectory_excerpt(str(real))  # the check keeps what it should show


def test_the_report_reads_no_file_but_a_trajectory(tmp_path: Path, private: Path) -> None:
    """A finished task whose recorded trajectory_path names a host file: the report does not embed it."""
    queue = Queue(tmp_path / "queue.jsonl")
    for n, path in enumerate(_named(tmp_path, private).values()):
        task_id = f"t{n}"
        queue.add(Task(id=task_id, kind=TaskKind.CHANGE))
        claim = queue.claim("w", lease_s=60)
        assert claim is not None
        queue.finish(task_id, claim.attempt, {"task_id": task_id, "attempt": 1, "trajectory_path": str(path)})
    out = write_report(
        build_report(queue), root=tmp_path, state_dir=tmp_path / "state", out=tmp_path / "r.html"
    )
    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.rglob("*.html"))
    assert out.is_file() and "t1" in text and "private-line-4242" not in text
