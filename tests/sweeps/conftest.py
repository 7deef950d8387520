"""Fixtures for the sweeps: a repo with lint debt in several modules and one module low on coverage."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import FILES, commit, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repo on main holding FILES in one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, FILES, "init")
    return root
