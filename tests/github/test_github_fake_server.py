"""FakeGitHub speaks enough REST for the real PyGithub, and refuses what GitHub would refuse."""

from __future__ import annotations

from pathlib import Path

import github
import pytest
from github_helpers import agent_commit, git

from agent_runner.testing.fake_github import FakeGitHub


def client(fake: FakeGitHub, token: str | None = "t") -> github.Github:
    """A PyGithub client for the fake, without the rate-etiquette pauses."""
    auth = github.Auth.Token(token) if token else None
    return github.Github(
        auth=auth, base_url=fake.base_url, seconds_between_requests=0, seconds_between_writes=0
    )


def test_pull_for_unpushed_branch_is_refused(fake: FakeGitHub) -> None:
    """Like GitHub, the fake answers 422 when the head branch does not exist on origin."""
    repo = client(fake).get_repo(fake.full_name)
    with pytest.raises(github.GithubException) as info:
        repo.create_pull(title="t", body="", head="agent/missing", base="main")
    assert info.value.status == 422


def test_requests_without_a_token_are_rejected(fake: FakeGitHub) -> None:
    """Every route needs an Authorization header."""
    with pytest.raises(github.GithubException) as info:
        client(fake, token=None).get_repo(fake.full_name)
    assert info.value.status == 401


def test_issue_comments_reviews_and_dismissal(source: Path, fake: FakeGitHub) -> None:
    """Conversation comments can be added and edited; a review can be dismissed; requests are recorded."""
    agent_commit(source, "agent/x", {"app.py": "x = 1\n"})
    git(source, "push", "-q", "origin", "agent/x")
    repo = client(fake).get_repo(fake.full_name)
    pull = repo.create_pull(title="t", body="b", head="agent/x", base="main", draft=True)
    comment = pull.create_issue_comment("hello")
    comment.edit("hello again")
    assert [c.body for c in pull.get_issue_comments()] == ["hello again"]
    review = pull.create_review(body="looks odd", event="REQUEST_CHANGES")
    review.dismiss("outdated")
    assert [r.state for r in pull.get_reviews()] == ["DISMISSED"]
    assert [f.filename for f in pull.get_files()] == ["app.py"]
    assert fake.calls("PUT", r"/reviews/\d+/dismissals$") and fake.calls("PATCH", r"/issues/comments/\d+$")
