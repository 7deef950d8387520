"""Fixtures for the GitHub tests: a bare `origin`, a source clone, and a FakeGitHub on 127.0.0.1."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.github import GitHubConfig
from agent_runner.result import GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.task import Task, TaskKind
from agent_runner.testing.fake_github import FakeGitHub

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


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


def agent_commit(repo: Path, branch: str, files: dict[str, str]) -> str:
    """Commit `files` on `branch` (from main), then go back to main, as a fetched bundle would; return it."""
    git(repo, "checkout", "-q", "-B", branch, "main")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"agent work on {branch}")
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "main")
    return sha


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


def make_task(**fields: object) -> Task:
    """A fix-lint task with labels."""
    data = {"id": "fix-app", "kind": TaskKind.FIX_LINT, "title": "Fix lint in app.py", "labels": ["chore"]}
    return Task.model_validate({**data, **fields})


def make_result(head: str, **fields: object) -> TaskResult:
    """An accepted result with one ruff gate."""
    gate = GateResult(
        name="ruff", verdict=GateVerdict.PASS, before={"violations": 7}, after={"violations": 0}
    )
    data = {"task_id": "fix-app", "outcome": Outcome.ACCEPTED, "summary": "Removed unused imports.",
            "gates": [gate], "head_commit": head, "steps": 4, "cost_usd": 0.0123, "attempt": 2}  # fmt: skip
    return TaskResult.model_validate({**data, **fields})
