"""Fixtures for the GitHub tests: a bare `origin`, a source clone, and a FakeGitHub on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from github_helpers import git

from agent_runner.config.github import GitHubConfig
from agent_runner.testing.fake_github import FakeGitHub

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare repo standing in for GitHub's copy of the repository."""
    path = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


@pytest.fixture
def source(tmp_path: Path, origin: Path) -> Path:
    """The user's checkout: one commit on main, pushed to origin."""
    path = tmp_path / "source"
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "app.py").write_text("def add(a, b):\n    return a + b\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    git(path, "remote", "add", "origin", str(origin))
    git(path, "push", "-q", "origin", "main")
    return path


@pytest.fixture
def fake(origin: Path) -> Iterator[FakeGitHub]:
    """A fake GitHub serving acme/widgets, backed by `origin`."""
    with FakeGitHub(origin=origin) as server:
        yield server


@pytest.fixture
def gh_config(fake: FakeGitHub) -> GitHubConfig:
    """Config pointing PyGithub at the fake."""
    return GitHubConfig(
        api_url=fake.base_url, repository=fake.full_name, request_interval_s=0, write_interval_s=0
    )


@pytest.fixture
def token_env() -> dict[str, str]:
    """An environment with a GitHub token."""
    return {"GITHUB_TOKEN": "test-token"}
