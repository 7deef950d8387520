"""Helpers for the refresh tests: a git-only verifier (a test double) and accepted tasks with open PRs."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from github_helpers import agent_commit, git, make_result, make_task

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.result import GateResult, GateVerdict, TaskResult
from agent_runner.core.task import Task
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.queue.intake import open_queue
from agent_runner.testing.fake_github import FakeGitHub

TESTS = GateResult(name="tests", verdict=GateVerdict.PASS, before={"failed": 0}, after={"failed": 0})


class GitVerifier:
    """Rebases with git in a temporary worktree; its "gates" are red for the task ids in `red` (a fake:
    the real one runs the gates in a verify job, in the sandbox)."""

    def __init__(self, red: dict[str, str] | None = None) -> None:
        self.red = red or {}
        self.calls: list[tuple[str, str, str]] = []

    def verify(self, repo: Path, task: Task, result: TaskResult, *, head: str, onto: str) -> TrainStep:
        """Return the rebased commit, or the conflict, or the red verdict."""
        self.calls.append((task.id, head, onto))
        step = {"task_id": task.id, "attempt": result.attempt, "branch": task.branch_name}
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "wt"
            git(repo, "worktree", "add", "-q", "--detach", str(tree), head)
            fork = git(repo, "merge-base", onto, head).strip()
            rebase = subprocess.run(["git", "-C", str(tree), "rebase", "-q", "--onto", onto, fork],
                                    capture_output=True, text=True, check=False)  # fmt: skip
            if rebase.returncode != 0:
                files = git(tree, "diff", "--name-only", "--diff-filter=U").split()
                git(tree, "rebase", "--abort")
                git(repo, "worktree", "remove", "--force", str(tree))
                return TrainStep(
                    **step, outcome=StepOutcome.CONFLICT, reason=f"conflict in {', '.join(files)}"
                )
            commit = git(tree, "rev-parse", "HEAD").strip()
            git(repo, "worktree", "remove", "--force", str(tree))
        if task.id in self.red:
            return TrainStep(**step, outcome=StepOutcome.RED, reason=self.red[task.id])
        return TrainStep(**step, outcome=StepOutcome.LANDED, commit=commit, gates=[TESTS])


def accept_with_pr(
    source: Path, config: RunnerConfig, env: dict[str, str], task_id: str, files: dict[str, str]
) -> str:
    """Commit `files` on agent/<id>, record the task as accepted in the queue, publish its PR; return head."""
    head = agent_commit(source, f"agent/{task_id}", files)
    task = make_task(id=task_id, title=f"Change {task_id}")
    result = make_result(head, task_id=task_id, attempt=1)
    queue = open_queue(source, config)
    queue.add(task)
    claim = queue.claim("w", lease_s=60, accept=lambda s: s.id == task_id)
    assert claim is not None
    queue.finish(task_id, claim.attempt, result.for_queue())
    url = GitHubPublisher(config.github, environ=env).publish(task, result, source)
    queue.publish_event(task_id, pr_url=url)
    return head


def person_merges(source: Path, fake: FakeGitHub, files: dict[str, str]) -> str:
    """A person's PR changing `files`, merged on GitHub; return the new main."""
    agent_commit(source, "feature/person", files)
    git(source, "push", "-q", "origin", "feature/person")
    return fake.merge_pull(fake.add_pull(head="feature/person", title="A person's change")["number"])
