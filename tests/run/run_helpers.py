"""Helpers for the run area's tests: a real source repo with task files and scripted models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from agent_runner.testing.scripts import ScriptedTasks

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 5
heartbeat_seconds = 0.5
backoff_seconds = 0
workers = 2
"""


def git(repo: Path, *args: str, input_text: str | None = None, as_agent: bool = False) -> str:
    """Run git in `repo` (reading `input_text`, if any) and return its output.

    In a checkout, git sees the runner's git dir beside it, unless `as_agent` (the agent's own `.git`).
    """
    runner = repo.with_name(repo.name + ".git")
    if not as_agent and runner.is_dir() and repo.is_dir():
        args = ("--git-dir", str(runner), "--work-tree", str(repo), *args)
    out = subprocess.run(
        ["git", *args], cwd=repo, input=input_text, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


class Project(ScriptedTasks):
    """A source repo holding tasks/, with helpers to add tasks and scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"

    def invoke(self, *args: str) -> Any:
        """Run `run-agents --root <repo> args...` in this process (typer's test runner): fast, same code."""
        from typer.testing import CliRunner

        from agent_runner.cli import get_app

        return CliRunner().invoke(get_app(), ["--root", str(self.root), *args])

    def cli(self, *args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` as a real subprocess."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root, **kwargs)
