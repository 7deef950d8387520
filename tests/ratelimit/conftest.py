"""Fixtures for the rate-limit tests: a real source repo with task files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_runner.testing.scripts import ScriptedTasks

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 10
heartbeat_seconds = 0.5
backoff_seconds = 0
"""


class Project(ScriptedTasks):
    """A source repo holding tasks/ (scripts beside it)."""

    def __init__(self, root: Path) -> None:
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A git repo with calc.py, a fast runner config and an empty tasks/ folder."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    for argv in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
    ):
        subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True)
    return Project(root)
