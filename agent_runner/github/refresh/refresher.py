"""Refreshing one repository's open agent PRs after their base branch moved.

For each accepted task with an open PR: fetch its base branch and its PR head; when the base moved (a PR
merged by a person), the verifier applies the task's commits onto the new base and re-runs its gates (in
the sandbox, never on this host: the gates run agent-written code). Green: the rebased commit is pushed with
a lease (a push someone made since is never overwritten) and the PR body notes the refresh and the new gate
table. A conflict or red gates: the task is queued again as a new attempt (not a spent one) with the reason
as context, and its PR says so. A branch already on its base's head is left alone, so a second refresh
with nothing moved does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from agent_runner.core.errors import GitHubError, QueueError, RunnerError
from agent_runner.core.redact import Redactor
from agent_runner.core.result import TaskResult
from agent_runner.core.task import BRANCH_PREFIX, Task
from agent_runner.core.train import StepOutcome, TrainStep
from agent_runner.github.api import GitHubRepo
from agent_runner.github.body import fenced, gate_table
from agent_runner.github.push import auth_env, git, push_branch, remote_url, resolve
from agent_runner.github.records import PullInfo
from agent_runner.github.sections import set_section
from agent_runner.repo.git import merge_trees

REFRESH_SECTION = "refresh"
FETCH_NS = "refs/agent-runner/refresh"
# The fetched base is kept as a local branch: workers fetch a repo's branches only, and the verify job
# checks out the new base. Under agent/, the one namespace the runner writes branches in; "_" is in no task
# id, so no task's branch is ever this one.
BASE_BRANCH = f"{BRANCH_PREFIX}_refresh/{{base}}"


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
    IN_BASE = "in-base"  # its change is already in the base (an integration PR merged): the PR can close
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
        if is_in(self.repo, head, base):
            self._note(pull, f"**Already in `{pull.base_ref}`** at `{base[:12]}`: this change reached it "
                       "another way (an integration PR, a person's merge). Close this PR.")  # fmt: skip
            return self._row(item, RefreshOutcome.IN_BASE, base=base, head=head)
        # A verify job that cannot run (no machine, the sandbox) is not the task's fault: skip, not requeue.
        try:
            step = self.verifier.verify(self.repo, task, item.result, head=head, onto=base)
        except RunnerError as exc:
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


def is_ancestor(repo: Path, base: str, head: str) -> bool:
    """Return whether `base` is already in `head`'s history (the branch is on the base's head)."""
    try:
        git(repo, "merge-base", "--is-ancestor", base, head, action="compare with the base")
    except GitHubError:
        return False
    return True


def is_in(repo: Path, head: str, base: str) -> bool:
    """Return whether the branch's change is already in `base`: merged onto it, it changes nothing."""
    tree, conflicts = merge_trees(repo, base, head)
    return not conflicts and tree == resolve_tree(repo, base)


def resolve_tree(repo: Path, commit: str) -> str:
    """Return the tree of `commit`."""
    return git(repo, "rev-parse", f"{commit}^{{tree}}", action="read a tree").strip()


def _move_local(repo: Path, branch: str, commit: str, old: str) -> None:
    """Move the local agent branch to the pushed commit when it was at the old one (else leave it)."""
    if resolve(repo, f"refs/heads/{branch}") == old:
        git(repo, "update-ref", f"refs/heads/{branch}", commit, old, action=f"move {branch}")
