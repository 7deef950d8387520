"""`run-agents refresh`: keep open agent PRs mergeable after their base branch moved.

For each accepted task with an open PR: fetch its base branch and its PR head; when the base moved (a PR
merged by a person), the verifier applies the task's commits onto the new base and re-runs its gates (in
the sandbox, never on this host: the gates run agent-written code). Green: the rebased commit is pushed with
a lease (a push someone made since is never overwritten) and the PR body notes the refresh and the new gate
table. A conflict or red gates: the task is queued again as a new attempt (not a spent one) with the reason
as context, and its PR says so. A branch already on its base's head is left alone, so a second refresh
with nothing moved does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from agent_runner.config.runner import RunnerConfig
from agent_runner.coordinator.landing import landing_repo
from agent_runner.core.errors import GitHubError, QueueError, RunnerError
from agent_runner.core.redact import Redactor, runner_redactor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import BRANCH_PREFIX, Task, TaskStatus
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.github.api import GitHubRepo, connect
from agent_runner.github.body import fenced, gate_table
from agent_runner.github.push import auth_env, git, push_branch, remote_url, resolve
from agent_runner.github.records import PullInfo
from agent_runner.github.sections import set_section
from agent_runner.queue.intake import open_queue
from agent_runner.queue.state import TaskState

REFRESH_SECTION = "refresh"
FETCH_NS = "refs/agent-runner/refresh"
# The fetched base is kept as a local branch: workers fetch a repo's branches only, and the verify job
# checks out the new base. Under agent/, the one namespace the runner writes branches in.
BASE_BRANCH = f"{BRANCH_PREFIX}refresh-base/{{base}}"


class Verifier(Protocol):
    """Applies a task's commits onto a new base and re-runs its gates, in the sandbox (never on the host)."""

    def verify(self, repo: Path, task: Task, result: TaskResult, *, head: str, onto: str) -> TrainStep:
        """Apply the accepted `result` (now at `head`) onto `onto` and run its gates there.

        Return LANDED with the new commit (now in `repo`), or CONFLICT / RED with the reason.
        """
        ...


class Requeuer(Protocol):
    """Queues a task again as a new attempt that is not counted as spent, with the reason as context."""

    def requeue(self, step: TrainStep, *, base: str, onto: str, reason: str) -> None:
        """Queue `step`'s task again: it no longer applies onto `base` at `onto`; its next attempt reads
        `reason`. Raise QueueError when the task moved meanwhile."""
        ...


class RefreshOutcome(StrEnum):
    """What `refresh` did with one open agent PR."""

    REBASED = "rebased"  # onto the new base, gates green, pushed, PR updated
    REQUEUED = "requeued"  # no longer applies (conflict or red): queued again as a new attempt
    UNCHANGED = "unchanged"  # the base did not move under it
    SKIPPED = "skipped"  # not refreshable now (closed PR, someone else's push, ...): see the reason


@dataclass(frozen=True)
class RefreshRow:
    """One open agent PR and what refresh did with it."""

    task: str
    branch: str
    outcome: RefreshOutcome
    pr: int | None = None
    base: str = ""  # the base branch's commit it was checked against
    head: str = ""  # the branch's commit afterwards
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome.value}


@dataclass(frozen=True)
class OpenPull:
    """An accepted task with its open pull request, as the queue and GitHub both say."""

    task: Task
    result: TaskResult
    pull: PullInfo


@dataclass(frozen=True)
class Refresher:
    """Refreshes the open agent PRs of one repository."""

    repo: Path
    gh: GitHubRepo
    verifier: Verifier
    requeuer: Requeuer
    remote: str = "origin"
    token: str | None = None
    redactor: Redactor = field(default_factory=Redactor)

    def refresh(self, pulls: Iterable[OpenPull]) -> list[RefreshRow]:
        """Refresh each open PR whose base moved; return one row per PR, in the order given."""
        return [self.refresh_one(item) for item in pulls]

    def refresh_one(self, item: OpenPull) -> RefreshRow:
        """Check one PR against its base's head; rebase and re-verify it, or queue its task again."""
        task, pull = item.task, item.pull
        try:
            base, head = self._fetch(pull)
        except GitHubError as exc:
            return self._row(item, RefreshOutcome.SKIPPED, reason=str(exc))
        if head != pull.head_sha and pull.head_sha:
            return self._row(item, RefreshOutcome.SKIPPED, base=base, head=head,
                             reason="the PR head moved while reading it; run refresh again")  # fmt: skip
        if is_ancestor(self.repo, base, head):
            return self._row(item, RefreshOutcome.UNCHANGED, base=base, head=head)
        try:
            step = self.verifier.verify(self.repo, task, item.result, head=head, onto=base)
        except (
            RunnerError
        ) as exc:  # the verify job could not run (a machine, the sandbox): not the task's fault
            return self._row(item, RefreshOutcome.SKIPPED, base=base, head=head,
                             reason=f"not verified: {exc}; run refresh again")  # fmt: skip
        if step.outcome is StepOutcome.LANDED:
            return self._rebased(item, step, base=base, old=head)
        return self._requeued(item, step, base=base, head=head)

    def _fetch(self, pull: PullInfo) -> tuple[str, str]:
        """Fetch the PR's base branch and head branch into private refs; return their commits."""
        base_ref = "refs/heads/" + BASE_BRANCH.format(base=pull.base_ref)
        head_ref = f"{FETCH_NS}/head/{pull.head_ref}"
        specs = [f"+refs/heads/{pull.base_ref}:{base_ref}", f"+refs/heads/{pull.head_ref}:{head_ref}"]
        env = auth_env(remote_url(self.repo, self.remote), self.token)
        git(self.repo, "fetch", "--no-tags", self.remote, *specs, env=env, action="git fetch")
        base, head = resolve(self.repo, base_ref), resolve(self.repo, head_ref)
        if not base or not head:
            raise GitHubError(f"cannot read {pull.base_ref} or {pull.head_ref} from {self.remote}")
        return base, head

    def _rebased(self, item: OpenPull, step: TrainStep, *, base: str, old: str) -> RefreshRow:
        """Push the rebased commit with a lease on the old one, move the local branch, note it on the PR."""
        pull, commit = item.pull, step.commit or ""
        if not commit or resolve(self.repo, commit) != commit:
            return self._row(item, RefreshOutcome.SKIPPED, base=base, head=old,
                             reason="the verify job named no rebased commit of this repo")  # fmt: skip
        try:
            push_branch(self.repo, remote=self.remote, branch=pull.head_ref, commit=commit,
                        token=self.token, lease=old)  # fmt: skip
        except GitHubError as exc:
            return self._row(item, RefreshOutcome.SKIPPED, base=base, head=old,
                             reason=f"not pushed (someone pushed to the branch?): {exc}")  # fmt: skip
        _move_local(self.repo, pull.head_ref, commit, old)
        text = (
            f"**Refreshed** onto `{pull.base_ref}` at `{base[:12]}` (was `{old[:12]}`, now `{commit[:12]}`): "
            "the gates passed again with the new base.\n\n" + gate_table(step.gates)
        )
        self._note(pull, text)
        return self._row(item, RefreshOutcome.REBASED, base=base, head=commit)

    def _requeued(self, item: OpenPull, step: TrainStep, *, base: str, head: str) -> RefreshRow:
        """Queue the task again with the reason, and say so on its PR."""
        what = "does not apply" if step.outcome is StepOutcome.CONFLICT else "turns the gates red"
        reason = (
            f"after {item.pull.base_ref} moved to {base[:12]}, this change {what}: "
            f"{step.reason or step.outcome.value}"
        )
        reason = self.redactor.text(reason)
        try:
            self.requeuer.requeue(step, base=item.pull.base_ref, onto=base, reason=reason)
        except QueueError as exc:  # the task moved meanwhile (a new attempt, cancelled): leave it
            return self._row(item, RefreshOutcome.SKIPPED, base=base, head=head, reason=str(exc))
        text = (
            f"**No longer applies** onto `{item.pull.base_ref}` at `{base[:12]}` ({step.outcome.value}): the "
            "task is queued again as a new attempt, with this as context.\n\n"
            + fenced(step.reason or step.outcome.value)
        )
        self._note(item.pull, text)
        return self._row(item, RefreshOutcome.REQUEUED, base=base, head=head, reason=reason)

    def _note(self, pull: PullInfo, text: str) -> None:
        body = set_section(pull.body, REFRESH_SECTION, self.redactor.text(text))
        if body != pull.body:
            self.gh.edit_pull(pull.number, title=pull.title, body=body)

    def _row(self, item: OpenPull, outcome: RefreshOutcome, **fields: Any) -> RefreshRow:
        return RefreshRow(item.task.id, item.pull.head_ref, outcome, pr=item.pull.number, **fields)


def open_pulls(
    candidates: Iterable[tuple[Task, TaskResult, str]], read_pull: Callable[[int], PullInfo]
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
    if pull.base_ref.startswith(BRANCH_PREFIX):
        return f"its PR targets another agent branch ({pull.base_ref}): refresh that one"
    return None


def pr_number(url: str) -> int | None:
    """Return the number at the end of a pull request URL, or None."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def is_ancestor(repo: Path, base: str, head: str) -> bool:
    """Return whether `base` is already in `head`'s history (the branch is on the base's head)."""
    try:
        git(repo, "merge-base", "--is-ancestor", base, head, action="compare with the base")
    except GitHubError:
        return False
    return True


def _move_local(repo: Path, branch: str, commit: str, old: str) -> None:
    """Move the local agent branch to the pushed commit when it was at the old one (else leave it)."""
    if resolve(repo, f"refs/heads/{branch}") == old:
        git(repo, "update-ref", f"refs/heads/{branch}", commit, old, action=f"move {branch}")


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
    by_repo: dict[Path, list[tuple[Task, TaskResult, str]]] = {}
    for candidate in accepted_with_pr(open_queue(root, config).refresh().values()):
        by_repo.setdefault(landing_repo(root, candidate[0]), []).append(candidate)
    rows: list[RefreshRow] = []
    for repo, candidates in by_repo.items():
        remote = config.github.remote
        gh = connect(config.github, remote_url=remote_url(repo, remote), environ=env)
        found, skipped = open_pulls(candidates, gh.pull)
        refresher = Refresher(repo, gh, verifier, requeuer, remote=remote, token=_token(env),
                              redactor=runner_redactor(config, env))  # fmt: skip
        rows += [*skipped, *refresher.refresh(found)]
    return rows


def accepted_with_pr(states: Iterable[TaskState]) -> list[tuple[Task, TaskResult, str]]:
    """Return (task, accepted result, PR URL) of each finished task with a PR, in queue order."""
    return [
        (state.task, state.result, state.pr_url)
        for state in sorted(states, key=lambda s: s.seq)
        if state.status is TaskStatus.FINISHED and state.pr_url and state.task and state.result
    ]


def _token(env: Mapping[str, str]) -> str | None:
    return env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
