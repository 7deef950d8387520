"""Fixtures for gate tests: the calc fixture project as a real git repo, and a gate context for a task."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.gate_settings import GatesConfig
from agent_runner.core.protocols import GateContext
from agent_runner.core.result import GateResult
from agent_runner.core.task import Task
from agent_runner.gates.kinds import JobKind, PreStep, get_job_kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Plugin autoload costs ~0.5 s per pytest start in the shared venv; the gates load their plugin with -p.
TEST_COMMAND = f"env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t"}
GIT_ENV["GIT_COMMITTER_EMAIL"] = "t@example.com"


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity and return stdout."""
    import os

    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str = "change") -> str:
    """Commit everything in `repo` and return the new HEAD."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    """A git repo holding a copy of tests/fixtures/calc_project, committed; its git dir is beside it, where
    the runner keeps a checkout's (`repo/.git` is a gitdir file, so plain git works there too)."""
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURES / "calc_project", repo)
    git(repo, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "repo.git"))
    commit_all(repo, "base")
    return repo


@pytest.fixture
def commit() -> Callable[..., str]:
    """Commit everything in a repo and return the new HEAD."""
    return commit_all


@pytest.fixture
def test_command() -> str:
    """The fixture project's test command (pytest, no plugin autoload)."""
    return TEST_COMMAND


@pytest.fixture
def make_ctx() -> Callable[..., GateContext]:
    """Build a GateContext for a task on a repo at its HEAD."""

    def build(repo: Path, *, config: RunnerConfig | None = None, **task_fields: Any) -> GateContext:
        task = Task.model_validate({"id": "t1", **task_fields})
        settings = gate_settings(config or RunnerConfig(gates=GatesConfig(max_mutants=5)))
        base = git(repo, "rev-parse", "HEAD").strip()
        return GateContext(repo, task, base, TEST_COMMAND, settings)

    return build


class GateRun:
    """One job kind driven by hand: baselines, prestep, the 'agent' edit, then the gate results."""

    def __init__(self, ctx: GateContext, *only: str) -> None:
        self.ctx = ctx
        self.kind: JobKind = get_job_kind(ctx.task.kind)
        self.gates = [g for g in self.kind.gates(ctx) if not only or g.name in only]
        self.baselines = {g.name: g.baseline(ctx) for g in self.gates}
        self.prestep: PreStep = self.kind.prestep(ctx)

    def check(self, *only: str) -> dict[str, GateResult]:
        """Run the gates (all, or those named) against their baselines; return the results by gate name."""
        gates = [g for g in self.gates if not only or g.name in only]
        return {g.name: g.check(self.ctx, self.baselines[g.name]) for g in gates}


@pytest.fixture
def gate_run() -> Callable[..., GateRun]:
    """Start a job kind's gates (all, or those named) on a context, with baselines and prestep done."""
    return GateRun
