"""A task's change as it landed: its branch in the source repo, the commit it forks from, and its diff."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent_runner.core.errors import GitError, QueueError
from agent_runner.core.task import Task, TaskKind
from agent_runner.queue.state import TaskState
from agent_runner.repo import git


@dataclass(frozen=True)
class Change:
    """Where a task's work is: `base..head` on `branch` in `repo`."""

    repo: Path
    branch: str
    base: str
    head: str

    @property
    def git_command(self) -> str:
        """The plain git command that prints the same diff (for people without run-agents at hand)."""
        return f"git -C {self.repo} diff {self.base[:12]}..{self.branch}"


def find_change(root: Path, state: TaskState) -> Change:
    """Return where the task's change is; raise QueueError saying why when it has no branch (yet)."""
    # ~70 ms (landing imports the gates' modules) at every CLI start; only `diff` and `show` need it
    from agent_runner.coordinator.landing import source_repo

    task = state.task
    if task is None:
        raise QueueError(f"{state.id} has no valid definition ({state.reason}); fix its task file")
    if task.kind == TaskKind.REVIEW:
        raise QueueError(
            f"{state.id} is a review: it changes no file; `run-agents show {state.id}` prints it"
        )
    source = source_repo(root, task)
    repo = Path(source) if git.is_local(source) else git.cache_path(source)
    head = _branch_head(repo, task.branch_name)
    if head is None:
        raise QueueError(_no_branch(state, task.branch_name, repo))
    return Change(repo, task.branch_name, _base_of(repo, state, task, head), head)


def change_diff(change: Change, *, stat: bool = False) -> str:
    """Return the diff of the change (with `stat`, the files changed and lines added and removed)."""
    args = ["--stat"] if stat else []
    return git.run_git(change.repo, "diff", "--no-color", *args, f"{change.base}..{change.head}", whole=True)


def _branch_head(repo: Path, branch: str) -> str | None:
    try:
        return git.run_git(repo, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}")
    except GitError:
        return None


def _base_of(repo: Path, state: TaskState, task: Task, head: str) -> str:
    """The base the landed result named, else where the branch forks from the task's base branch."""
    result = state.result
    recorded = result.base_commit if result is not None and result.head_commit == head else None
    if recorded and git.has_commit(repo, recorded):
        return recorded
    try:
        return git.run_git(repo, "merge-base", git.resolve_base(repo, task.base), head)
    except GitError as exc:
        raise QueueError(f"cannot tell where {task.branch_name} forks from in {repo}: {exc}") from exc


def _no_branch(state: TaskState, branch: str, repo: Path) -> str:
    why = f"{state.id} is {state.status.value}" + (
        f" ({state.reason.splitlines()[0]})" if state.reason else ""
    )
    return (
        f"no branch {branch} in {repo} yet: {why}; a branch is made when an attempt's gates pass "
        f"(`run-agents run`, then `run-agents show {state.id}`)"
    )
