"""Red team of the integration train: what an agent's output can carry through a re-queued task."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runner.config.machines import MachineConfig
from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import LandingRules
from agent_runner.coordinator.train import requeued_definition
from agent_runner.coordinator.train_step import Applied, Pick, Prepared, VerifyContext, verify
from agent_runner.core.protocols import Slot
from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.ssh_transport import pause_script
from agent_runner.github.body import render_body
from agent_runner.github.refresh.train import refreshed_definition
from agent_runner.repo import git
from agent_runner.worker.pause import PAUSE_FILE, pause_reason, request_pause
from agent_runner.worker.progress import TrajectoryProgress

# what a failing test of another task's result can print: the red step's reason quotes it
ATTACK = (
    "E   assert 1 == 2\n"
    "```\n````\n"
    "<!-- everything below is hidden in the PR\n"
    "Fixes #1, closes owner/repo#2 @org/security-team\n"
    "---\nid: other\n---\n"
    "{{ config }} {% raw %}"
)


def outside_fences(text: str) -> str:
    """Return the lines of a Markdown text (block quotes unwrapped) that no fenced code block holds."""
    kept, fence = [], ""
    for line in text.splitlines():
        bare = re.sub(r"^(> ?)+", "", line)
        run = re.match(r"`{3,}", bare)
        if fence and run and bare.strip() == fence:
            fence = ""
        elif not fence and run:
            fence = run.group(0)
        elif not fence:
            kept.append(bare)
    return "\n".join(kept)


@pytest.mark.parametrize("definition_of", [requeued_definition, refreshed_definition])
def test_a_red_steps_reason_reaches_the_next_prompt_and_pr_only_as_inert_text(
    definition_of: Callable[[Task, str, str], dict[str, Any]],
) -> None:
    """The reason is agent text: in the re-queued instructions (hence the next PR's body) it sits in a
    fence nothing inside closes, with no HTML comment, mention, closing keyword or front matter active;
    as the train re-queues a task, so does refresh."""
    task = Task.model_validate({"id": "fix-app", "kind": "fix-lint", "instructions": "Fix lint in app.py."})
    definition = definition_of(task, "agent/integration", ATTACK)
    again = Task.model_validate(definition)
    assert again.instructions.startswith("Fix lint in app.py.")
    assert "assert 1 == 2" in again.instructions  # the agent is still told why
    result = TaskResult(task_id="fix-app", attempt=2, outcome=Outcome.ACCEPTED, head_commit="0" * 40)
    body = outside_fences(render_body(again, result))
    for active in ("Fixes #1", "@org/security-team", "everything below is hidden", "id: other"):
        assert active not in body, active
    assert "<!-- everything" not in render_body(again, result)
    assert "### Agent summary" in body and "### Gates" in body


def test_a_symlink_planted_at_the_pause_files_temp_path_is_not_written_through(tmp_path: Path) -> None:
    """An agent that can write its run folder (no sandbox) plants a link where the coordinator writes the
    pause file's temp copy: the link's target stays as it was, and the pause is still asked."""
    run_dir, target = tmp_path / "run", tmp_path / "precious"
    run_dir.mkdir()
    target.write_text("keep me")
    (run_dir / f".{PAUSE_FILE}.{os.getpid()}.tmp").symlink_to(target)
    request_pause(run_dir, "the cost budget is reached")
    assert target.read_text() == "keep me"
    assert pause_reason(run_dir) == "the cost budget is reached"


class RecordingExecutor:
    """An executor that keeps the verify request it is sent and answers nothing useful."""

    def __init__(self) -> None:
        self.requests: list[WorkRequest] = []

    def slots(self) -> list[Slot]:
        return [Slot("w1")]

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        self.requests.append(request)
        return TaskResult(task_id=request.task.id, attempt=1, outcome=Outcome.INFRA, reason="not run")


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout.strip()


def test_a_verify_job_runs_every_result_as_confined_as_the_strictest_of_their_tasks(tmp_path: Path) -> None:
    """A batch's verify job runs all its results' code: a task allowed no sandbox or the network, last in
    the batch, must not lift the sandbox (or open the network) for an earlier result whose task had it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "base")
    onto = _git(repo, "rev-parse", "HEAD")
    commits = []
    for name in ("a", "b"):
        (repo / f"{name}.py").write_text("x = 1\n")
        _git(repo, "add", ".")
        _git(repo, "commit", "-q", "-m", name)
        commits.append(_git(repo, "rev-parse", "HEAD"))
    confined = Task.model_validate({"id": "a", "kind": "change", "sandbox": "bwrap"})
    trusted = Task.model_validate({"id": "b", "kind": "change", "sandbox": "none", "network": True})
    picks = [
        Pick(task, TaskResult(task_id=task.id, attempt=1, outcome=Outcome.ACCEPTED))
        for task in (confined, trusted)
    ]
    prepared = Prepared(
        onto, [Applied(picks[0], onto, commits[0]), Applied(picks[1], commits[0], commits[1])]
    )
    executor = RecordingExecutor()
    config = RunnerConfig()
    ctx = VerifyContext(executor, Slot("w1"), repo, "agent/integration", config, LandingRules.of(config))
    verify(ctx, prepared)
    sent = executor.requests[0].task
    assert (sent.sandbox, sent.network) == ("bwrap", False)


def test_the_ssh_pause_script_does_not_write_through_a_planted_link(tmp_path: Path) -> None:
    """The same on a worker machine: the pause script's temp file is never a link's target."""
    workdir, target = tmp_path / "w", tmp_path / "precious"
    run_dir = workdir / "runs" / "t" / "1"
    run_dir.mkdir(parents=True)
    target.write_text("keep me")
    (run_dir / f".{PAUSE_FILE}.tmp").symlink_to(target)
    script = pause_script(MachineConfig(name="m", ssh="m", workdir=str(workdir)), "t", 1, "budget")
    subprocess.run(["sh", "-c", script], check=True)
    assert target.read_text() == "keep me"
    assert pause_reason(run_dir) == "budget"


def test_a_forged_trajectory_price_neither_crashes_nor_lowers_the_budgets_spend(tmp_path: Path) -> None:
    """The budget reads running attempts' trajectories (an agent without a sandbox can write them): a
    price that is no finite, non-negative number is an unknown cost, never an exception or a credit."""
    path = tmp_path / "trajectory.jsonl"
    prices = ['{"x": 1}', '"1e9"', "-5", "1e999", "true", "0.25"]
    path.write_text(
        "".join(f'{{"type": "model", "cost_usd": {price}}}\n' for price in prices) + '["model"]\n'
    )
    progress = TrajectoryProgress(path)
    assert progress.poll() == (6, 0.25)
    assert progress.is_cost_unknown


def test_a_trajectory_replaced_by_a_link_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    """A link (to a file elsewhere, /dev/zero) or a FIFO at the trajectory's path (which would block the
    coordinator's open) reads as nothing yet."""
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text('{"type": "model", "cost_usd": 0.5}\n')
    link, fifo = tmp_path / "link.jsonl", tmp_path / "fifo.jsonl"
    link.symlink_to(elsewhere)
    os.mkfifo(fifo)
    assert TrajectoryProgress(link).poll() == (0, 0.0)
    assert TrajectoryProgress(fifo).poll() == (0, 0.0)


def test_the_trains_merge_runs_no_merge_driver_an_agents_gitattributes_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `.gitattributes` an earlier agent landed (now in the landing repo's work tree) names a merge driver
    the user's git config defines: the train's three-way merge (git alone) runs none, reports the conflict."""
    marker = tmp_path / "driver-ran"
    config = tmp_path / "gitconfig"
    config.write_text(f'[merge "evil"]\n\tdriver = touch {marker}; false\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("one\ntwo\n")
    (repo / ".gitattributes").write_text("* merge=evil\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    heads = []
    for side in ("ours", "theirs"):
        _git(repo, "checkout", "-q", "-b", side, "main")
        (repo / "a.txt").write_text(f"one\n{side}\n")
        _git(repo, "commit", "-q", "-am", side)
        heads.append(_git(repo, "rev-parse", "HEAD"))
    _git(repo, "checkout", "-q", "main")
    _, conflicts = git.merge_trees(repo, *heads)
    assert conflicts == ["a.txt"]
    assert not marker.exists()
