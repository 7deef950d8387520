"""Fixtures for the run area: a real source repo with task files and scripted models."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_helpers import PYPROJECT, Project, git


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A git repo with calc.py, a runner config for fast tests, and an empty tasks/ folder."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return Project(root)
