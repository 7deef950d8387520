"""Which pull requests `run-agents refresh` takes: accepted tasks in the queue whose agent PR is open.

The queue says which tasks are accepted and where their PR is; GitHub says whether it is still open, on the
task's own branch, against a base that is not another agent branch. `refresh_all` refreshes them repository
by repository (a task's repo may be another one than the root's).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import landing_repo
from agent_runner.core.errors import GitHubError
from agent_runner.core.redact import runner_redactor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import BRANCH_PREFIX, Task, TaskStatus
from agent_runner.github.api import connect, get_token
from agent_runner.github.push import remote_url
from agent_runner.github.records import PullInfo
from agent_runner.github.refresh.refresher import (
    OpenPull,
    Refresher,
    RefreshOutcome,
    RefreshRow,
    Requeuer,
    Verifier,
)
from agent_runner.queue.intake import open_queue
from agent_runner.queue.state import TaskState

Candidate = tuple[Task, TaskResult, str]  # an accepted task, its result and its PR's URL
BRANCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")  # what GitHub says the base is, re-checked


def refresh_all(
    root: Path,
    config: RunnerConfig,
    *,
    verifier: Verifier,
    requeuer: Requeuer,
    environ: Mapping[str, str] | None = None,
) -> list[RefreshRow]:
    """Refresh the open PR of every accepted task in the queue, repository by repository."""
    env = dict(os.environ if environ is None else environ)
    by_repo: dict[Path, list[Candidate]] = {}
    for candidate in accepted_with_pr(open_queue(root, config).refresh().values()):
        by_repo.setdefault(landing_repo(root, candidate[0]), []).append(candidate)
    token = get_token(env) if by_repo else None  # no token: say so once, before any repo
    rows: list[RefreshRow] = []
    for repo, candidates in by_repo.items():
        remote = config.github.remote
        try:
            gh = connect(config.github, remote_url=remote_url(repo, remote), environ=env)
            found, skipped = open_pulls(candidates, gh.pull)
        except GitHubError as exc:  # this repo cannot be reached: the others still can
            rows += [
                RefreshRow(t.id, t.branch_name, RefreshOutcome.SKIPPED, reason=str(exc))
                for t, _, _ in candidates
            ]
            continue
        refresher = Refresher(repo, gh, verifier, requeuer, remote=remote, token=token,
                              redactor=runner_redactor(config, env))  # fmt: skip
        rows += [*skipped, *refresher.refresh(found)]
    return rows


def accepted_with_pr(states: Iterable[TaskState]) -> list[Candidate]:
    """Return (task, accepted result, PR URL) of each finished task with a PR, in queue order."""
    return [
        (state.task, state.result, state.pr_url)
        for state in sorted(states, key=lambda s: s.seq)
        if state.status is TaskStatus.FINISHED and state.pr_url and state.task and state.result
    ]


def open_pulls(
    candidates: Iterable[Candidate], read_pull: Callable[[int], PullInfo]
) -> tuple[list[OpenPull], list[RefreshRow]]:
    """Split (task, result, PR URL) of accepted tasks into open agent PRs to refresh and skipped rows."""
    found, skipped = [], []
    for task, result, url in candidates:
        number = pr_number(url)
        try:
            pull = read_pull(number) if number is not None else None
        except GitHubError as exc:
            skipped.append(
                RefreshRow(task.id, task.branch_name, RefreshOutcome.SKIPPED, number, reason=str(exc))
            )
            continue
        problem = _not_refreshable(task, pull)
        if pull is not None and problem is None:
            found.append(OpenPull(task, result, pull))
        elif problem:
            skipped.append(
                RefreshRow(task.id, task.branch_name, RefreshOutcome.SKIPPED, number, reason=problem)
            )
    return found, skipped


def _not_refreshable(task: Task, pull: PullInfo | None) -> str | None:
    """Why this PR is not refreshed ("" to leave it out silently: closed or merged), or None."""
    if pull is None:
        return "its PR URL names no pull request"
    if pull.state != "open" or pull.merged:
        return ""
    if pull.head_ref != task.branch_name:
        return f"its PR's head is {pull.head_ref}, not the task's branch {task.branch_name}"
    if not BRANCH_NAME.fullmatch(pull.base_ref) or ".." in pull.base_ref:
        return f"its PR's base {pull.base_ref!r} is not a branch name refresh fetches"
    if pull.base_ref.startswith(BRANCH_PREFIX):
        return f"its PR targets another agent branch ({pull.base_ref}): refresh that one"
    return None


def pr_number(url: str) -> int | None:
    """Return the number at the end of a pull request URL, or None."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None
