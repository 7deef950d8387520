"""Publishing: push agent/<id>, open or update one PR per task, refuse other branches."""

from __future__ import annotations

from pathlib import Path

import pytest
from github_helpers import agent_commit, git, make_result, make_task

from agent_runner.config.github import GitHubConfig
from agent_runner.core.errors import GitHubError
from agent_runner.github.api import connect, parse_remote
from agent_runner.github.body import render_body
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.push import push_branch
from agent_runner.testing.fake_github import FakeGitHub


def test_publish_opens_draft_pr_with_head_base_labels_and_gate_table(
    source: Path, origin: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """The branch is pushed and one draft PR opens against main with labels and the gate table."""
    head = agent_commit(source, "agent/fix-app", {"app.py": "def add(a, b):\n    return a + b  # fixed\n"})
    url = GitHubPublisher(gh_config, environ=token_env).publish(make_task(), make_result(head), source)
    assert git(origin, "rev-parse", "refs/heads/agent/fix-app").strip() == head
    (create,) = fake.calls("POST", r"/pulls$")
    assert (
        create.body["head"] == "agent/fix-app"
        and create.body["base"] == "main"
        and create.body["draft"] is True
    )
    pull = fake.store.pulls[1]
    assert url == pull["html_url"]
    assert [label["name"] for label in pull["labels"]] == ["agent-runner", "fix-lint", "chore"]
    assert "| ruff | violations 7 | violations 0 | pass |" in pull["body"]
    assert "<!-- agent-runner:task=fix-app -->" in pull["body"] and "attempt: 2" in pull["body"]


def test_pr_true_opens_ready_pr_and_pr_false_only_pushes(
    source: Path, origin: Path, fake: FakeGitHub, gh_config: GitHubConfig
) -> None:
    """`pr: true` opens a ready PR; `pr: false` pushes without a token and opens none."""
    head = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    assert (
        GitHubPublisher(gh_config, environ={}).publish(make_task(pr=False), make_result(head), source) is None
    )
    assert git(origin, "rev-parse", "refs/heads/agent/fix-app").strip() == head and not fake.store.pulls
    GitHubPublisher(gh_config, environ={"GH_TOKEN": "t"}).publish(
        make_task(pr=True), make_result(head), source
    )
    assert fake.store.pulls[1]["draft"] is False


def test_republish_updates_the_same_pr(
    source: Path, origin: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """A second delivery (new attempt, new commit) force-pushes and edits the PR; no second PR."""
    publisher = GitHubPublisher(gh_config, environ=token_env)
    first = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    url1 = publisher.publish(make_task(), make_result(first), source)
    second = agent_commit(source, "agent/fix-app", {"app.py": "x = 2\n"})
    url2 = publisher.publish(make_task(), make_result(second, summary="Second try."), source)
    assert url1 == url2 and len(fake.store.pulls) == 1 and len(fake.calls("POST", r"/pulls$")) == 1
    assert "Second try." in fake.store.pulls[1]["body"]
    assert git(origin, "rev-parse", "refs/heads/agent/fix-app").strip() == second


def test_pr_found_by_marker_after_branch_rename(
    source: Path, fake: FakeGitHub, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """The hidden marker finds the task's PR even when its head branch has another name."""
    publisher = GitHubPublisher(gh_config, environ=token_env)
    head = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    publisher.publish(make_task(), make_result(head), source)
    head2 = agent_commit(source, "agent/fix-app-v2", {"app.py": "x = 3\n"})
    publisher.publish(make_task(branch="agent/fix-app-v2"), make_result(head2, summary="renamed"), source)
    assert len(fake.store.pulls) == 1 and "renamed" in fake.store.pulls[1]["body"]


@pytest.mark.parametrize("branch", ["main", "feature/x", "agent", "agent/../main"])
def test_push_outside_agent_namespace_is_refused(source: Path, origin: Path, branch: str) -> None:
    """Only branches under agent/ can be pushed; main on origin is untouched."""
    before = git(origin, "rev-parse", "refs/heads/main")
    head = git(source, "rev-parse", "HEAD").strip()
    with pytest.raises(GitHubError, match="only pushes branches under 'agent/'"):
        push_branch(source, remote="origin", branch=branch, commit=head, token=None)
    assert git(origin, "rev-parse", "refs/heads/main") == before


def test_result_branch_outside_agent_namespace_is_refused(
    source: Path, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """A result claiming a non-agent branch cannot make the publisher push it."""
    head = git(source, "rev-parse", "HEAD").strip()
    with pytest.raises(GitHubError, match="refusing to push 'main'"):
        GitHubPublisher(gh_config, environ=token_env).publish(
            make_task(), make_result(head, branch="main"), source
        )


def test_missing_token_is_a_clear_error_before_any_push(
    source: Path, origin: Path, gh_config: GitHubConfig
) -> None:
    """Without GITHUB_TOKEN/GH_TOKEN nothing is pushed and the message says what to set."""
    head = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    with pytest.raises(GitHubError, match="set GITHUB_TOKEN or GH_TOKEN"):
        GitHubPublisher(gh_config, environ={}).publish(make_task(), make_result(head), source)
    assert git(origin, "branch", "--list", "agent/*") == ""


def test_rejected_push_keeps_local_branch_and_says_retry(
    source: Path, origin: Path, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """A push the remote rejects (a hook here) raises GitHubError naming the retry command."""
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected by policy' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    with pytest.raises(GitHubError, match="retry with `run-agents publish`"):
        GitHubPublisher(gh_config, environ=token_env).publish(make_task(), make_result(head), source)
    assert git(source, "rev-parse", "refs/heads/agent/fix-app").strip() == head


def test_rejected_token_is_reported(source: Path, fake: FakeGitHub, gh_config: GitHubConfig) -> None:
    """A GitHub error answer becomes GitHubError with the status and message."""
    fake.fail[("GET", "/api/v3/repos/acme/widgets")] = (401, "Bad credentials")
    head = agent_commit(source, "agent/fix-app", {"app.py": "x = 1\n"})
    with pytest.raises(GitHubError, match="token was rejected"):
        GitHubPublisher(gh_config, environ={"GITHUB_TOKEN": "bad"}).publish(
            make_task(), make_result(head), source
        )


def test_body_is_capped_and_keeps_marker(tmp_path: Path) -> None:
    """A huge summary and trajectory never push the body past the cap; the marker survives."""
    trajectory = tmp_path / "trajectory.jsonl"
    trajectory.write_text("".join(f'{{"step": {i}, "text": "{"x" * 500}"}}\n' for i in range(500)))
    result = make_result("0" * 40, summary="s" * 100_000, trajectory_path=str(trajectory))
    body = render_body(make_task(instructions="i" * 100_000), result, max_chars=60_000)
    assert len(body) <= 60_000 and body.rstrip().endswith("<!-- agent-runner:task=fix-app -->")
    assert "<details><summary>Trajectory excerpt</summary>" in body


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/widgets.git",
        "https://github.com/acme/widgets",
        "git@github.com:acme/widgets.git",
        "ssh://git@github.example.com:2222/acme/widgets.git",
        "https://x-access-token:abc@ghe.example.com/acme/widgets/",
    ],
)
def test_parse_remote(url: str) -> None:
    """Owner and repo come out of https, ssh:// and scp-style URLs."""
    assert parse_remote(url) == "acme/widgets"


def test_parse_remote_rejects_a_path() -> None:
    """A local path is not a GitHub remote: the error says to configure the repository."""
    with pytest.raises(GitHubError, match="repository"):
        parse_remote("/srv/git/widgets.git")


def test_result_cannot_force_push_another_tasks_branch(
    source: Path, origin: Path, gh_config: GitHubConfig, token_env: dict[str, str]
) -> None:
    """A result naming another agent branch is refused: a task force-pushes only its own branch."""
    head = agent_commit(source, "agent/other", {"app.py": "x = 1\n"})
    with pytest.raises(GitHubError, match="may only push agent/fix-app"):
        GitHubPublisher(gh_config, environ=token_env).publish(
            make_task(), make_result(head, branch="agent/other"), source
        )
    assert git(origin, "branch", "--list", "agent/*") == ""


def test_actions_environment_names_the_api_and_repository(fake: FakeGitHub) -> None:
    """In GitHub Actions (also GHE), GITHUB_API_URL and GITHUB_REPOSITORY are enough to connect."""
    env = {"GITHUB_TOKEN": "t", "GITHUB_API_URL": fake.base_url, "GITHUB_REPOSITORY": "acme/widgets"}
    config = GitHubConfig(request_interval_s=0, write_interval_s=0)
    assert connect(config, remote_url="/srv/git/widgets.git", environ=env).default_branch == "main"
