"""`sweep issues --label L` against the fake GitHub: one change task per open labelled issue, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sweep_lint import rows, sweep

from agent_runner.core.result import Outcome, TaskResult
from agent_runner.core.task import TaskKind, load_task_file
from agent_runner.github.body import render_body
from agent_runner.testing.fake_github import FakeGitHub


@pytest.fixture
def fake(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    """A fake GitHub with a labelled issue, an issue without the label, a closed one and a labelled PR."""
    with FakeGitHub() as server:
        server.add_issue(
            title="Rename the helper", body="Call it `triple`.\x07\nKeep `double`.", labels=("agent",)
        )
        server.add_issue(title="Unrelated", labels=("bug",))
        server.add_issue(title="Done already", labels=("agent",), state="closed")
        server.add_pull(head="agent/x", title="a pull request")
        server.store.pulls[4]["labels"].append({"name": "agent"})
        table = (
            f'[tool.agent-runner.github]\napi_url = "{server.base_url}"\nrepository = "{server.full_name}"\n'
        )
        with open(repo / "pyproject.toml", "a", encoding="utf-8") as fh:
            fh.write(f"\n{table}request_interval_s = 0\nwrite_interval_s = 0\n")
        monkeypatch.setenv("GITHUB_TOKEN", "test-token")
        yield server


def test_issue_sweep_makes_one_task_per_labelled_issue_once(repo: Path, fake: FakeGitHub) -> None:
    """Only the open issue with the label becomes a task (id from its number, a link back); sweeping again
    writes nothing new."""
    report = sweep(repo, "issues", "--label", "agent")
    assert list(rows(report)) == ["issue-1"] and rows(report)["issue-1"]["outcome"] == "new"
    task = load_task_file(repo / "tasks" / "issue-1.md")
    assert task.kind == TaskKind.CHANGE and task.title == "#1: Rename the helper"
    assert task.instructions.startswith("Closes #1 (https://github.example/acme/widgets/issues/1)")
    assert "Call it `triple`.\nKeep `double`." in task.instructions  # the bell character dropped

    queue = (repo / "tasks" / "queue.jsonl").read_bytes()
    again = sweep(repo, "issues", "--label", "agent")
    assert [(r["task_id"], r["outcome"]) for r in again["tasks"]] == [("issue-1", "unchanged")]
    assert sorted(p.name for p in (repo / "tasks").glob("*.md")) == ["issue-1.md"]
    assert (repo / "tasks" / "queue.jsonl").read_bytes() == queue


def test_the_pull_request_body_links_back_to_the_issue(repo: Path, fake: FakeGitHub) -> None:
    """The PR body quotes the task, whose first line closes the issue."""
    sweep(repo, "issues", "--label", "agent")
    task = load_task_file(repo / "tasks" / "issue-1.md")
    body = render_body(task, TaskResult(task_id=task.id, attempt=1, outcome=Outcome.ACCEPTED))
    assert "> Closes #1 (https://github.example/acme/widgets/issues/1)" in body
