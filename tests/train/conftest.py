"""Fixtures for the train's tests: a real repo with five tasks' worth of scripted agents."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import TrainProject


@pytest.fixture
def project(tmp_path: Path) -> TrainProject:
    """A git repo with calc.py, limits.py and a check script as its test command."""
    return TrainProject(tmp_path / "repo")
