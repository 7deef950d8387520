"""Fleet fixtures: namespace machines with their own sshd, and a source repo whose remote they fetch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_helpers import FleetProject, git

from agent_runner.testing.netns import NetnsFleet, unavailable_reason


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[NetnsFleet]:
    """Two namespace machines m1, m2, each with its own sshd, HOME and address (skips without root)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"namespace machines unavailable: {reason}")
    with NetnsFleet(tmp_path / "fleet", 2) as machines:
        yield machines


@pytest.fixture
def project(tmp_path: Path, fleet: NetnsFleet) -> FleetProject:
    """A coordinator repo with calc.py whose origin is a bare repo every machine can fetch."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    git(root, "push", "-q", "-u", "origin", "main")
    return FleetProject(root, fleet)
