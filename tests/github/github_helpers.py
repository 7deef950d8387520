"""Helpers for the GitHub tests (a uniquely named module: other test folders have their own conftest)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.core.task import Task, TaskKind


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


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
