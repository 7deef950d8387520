"""The queue file on the state branch: committed without touching the work tree or main, read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from github_helpers import git

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import GitHubError
from agent_runner.github.actions import pull_state, push_state
from agent_runner.github.push import commit_file, fetch_file


def test_commit_and_fetch_round_trip_without_touching_main(source: Path, origin: Path) -> None:
    """Two commits stack on the state branch; main, HEAD and the work tree stay as they were."""
    main, head = git(origin, "rev-parse", "main"), git(source, "rev-parse", "HEAD")
    args = {"remote": "origin", "branch": "agent-runner/state", "path": "tasks/queue.jsonl", "token": None}
    first = commit_file(source, data=b'{"a":1}\n', message="one", **args)
    second = commit_file(source, data=b'{"a":1}\n{"b":2}\n', message="two", **args)
    assert git(origin, "rev-parse", "agent-runner/state~1").strip() == first
    assert git(origin, "rev-parse", "agent-runner/state").strip() == second
    assert fetch_file(source, **args) == '{"a":1}\n{"b":2}\n'
    assert git(origin, "rev-parse", "main") == main and git(source, "rev-parse", "HEAD") == head
    assert not (source / "tasks").exists() and git(source, "status", "--porcelain") == ""


def test_unchanged_queue_makes_no_new_commit(source: Path, origin: Path) -> None:
    """Committing the same content again returns the existing commit: no empty commits pile up."""
    args = {"remote": "origin", "branch": "agent-runner/state", "path": "q.jsonl", "token": None}
    first = commit_file(source, data=b"x\n", message="one", **args)
    assert commit_file(source, data=b"x\n", message="again", **args) == first


@pytest.mark.parametrize("branch", ["main", "master", "agent/state", ""])
def test_state_branch_cannot_be_main_or_an_agent_branch(source: Path, branch: str) -> None:
    """The state branch is a dedicated branch: never main and never under agent/."""
    with pytest.raises(GitHubError, match="state branch"):
        commit_file(source, remote="origin", branch=branch, path="q", data=b"", message="m", token=None)


def test_pull_state_replaces_local_queue_and_backs_up_local_only_events(source: Path) -> None:
    """The branch's queue replaces the local one; local events the branch lacks are kept in a backup file."""
    config = RunnerConfig()
    assert pull_state(source, config, token=None) is False  # no state branch yet
    queue = source / "tasks" / "queue.jsonl"
    queue.parent.mkdir()
    queue.write_text('{"type":"queued","task":"a"}\n')
    push_state(source, config, token=None, message="state")
    queue.write_text('{"type":"queued","task":"local-only"}\n')
    assert pull_state(source, config, token=None) is True
    assert queue.read_text() == '{"type":"queued","task":"a"}\n'
    assert "local-only" in (queue.parent / "queue.jsonl.before-pull").read_text()
