"""The result records the sandbox the attempt really ran in: bwrap, none, or what "auto" resolved to."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.testing.scripts import bash_turn, finish_turn
from agent_runner.worker.job import run_job
from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)
# The agent notes its PID namespace in the checkout: under bubblewrap it is not the worker's.
NOTE_PIDNS = "readlink /proc/self/ns/pid > pidns.txt"


def _run(project: Project, tmp_path: Path, task_id: str, **config: Any) -> TaskResult:
    """Run one change task whose agent writes pidns.txt, with `config` over the project's."""
    project.task(task_id, project.script(task_id, [bash_turn(NOTE_PIDNS), finish_turn()]))
    settings = load_config(project.root, overrides=config).model_dump(mode="json", by_alias=True)
    task = load_task_file(project.tasks / f"{task_id}.md")
    request = WorkRequest(task=task, repo=str(project.root), config=settings)
    result = run_job(request, workdir=tmp_path / "state")
    assert result.outcome == Outcome.ACCEPTED, result.reason
    return result


def _agent_pidns(project: Project, result: TaskResult) -> str:
    """Return the PID namespace the agent's command saw, from the result's bundle."""
    assert result.bundle_path and result.branch
    git(project.root, "fetch", "-q", result.bundle_path, f"{result.branch}:{result.branch}")
    return git(project.root, "show", f"{result.branch}:pidns.txt")


@needs_bwrap
@pytest.mark.parametrize("mode", ["bwrap", "auto"])
def test_bwrap_is_recorded_when_the_agent_ran_under_it(project: Project, tmp_path: Path, mode: str) -> None:
    """With bubblewrap usable, "bwrap" and "auto" record "bwrap"; the agent had its own PID namespace."""
    result = _run(project, tmp_path, f"under-{mode}", sandbox=mode)
    assert result.sandbox == "bwrap"
    assert _agent_pidns(project, result) != os.readlink("/proc/self/ns/pid")
    assert result.for_queue()["sandbox"] == "bwrap"


def test_none_is_recorded_when_the_agent_ran_unconfined(project: Project, tmp_path: Path) -> None:
    """sandbox = "none" records "none", and the agent's command shared the worker's PID namespace."""
    result = _run(project, tmp_path, "unconfined", sandbox="none")
    assert result.sandbox == "none"
    assert _agent_pidns(project, result) == os.readlink("/proc/self/ns/pid")


def test_auto_falling_back_records_none(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the bwrap on PATH cannot run, "auto" falls back and the result says "none", not "auto"."""
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    (broken / "bwrap").write_text("#!/bin/sh\necho 'setting up uid map: Permission denied' >&2\nexit 1\n")
    (broken / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken}{os.pathsep}{os.environ['PATH']}")
    result = _run(project, tmp_path, "fell-back", sandbox="auto")
    assert result.sandbox == "none"
    assert _agent_pidns(project, result) == os.readlink("/proc/self/ns/pid")


def test_a_result_from_before_the_field_reads_as_unknown() -> None:
    """A queue record without `sandbox` (an older agent-runner) loads with sandbox None, and stays so."""
    old = TaskResult.model_validate({"task_id": "t", "outcome": "accepted"})
    assert old.sandbox is None and "sandbox" not in old.for_queue()
