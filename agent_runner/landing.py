"""Where a task's work comes from and lands: its source repo, and the result bundle brought back into it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent_runner import bundles, git
from agent_runner.result import TaskResult
from agent_runner.task import Task
from agent_runner.workspace import AttemptPaths


def source_repo(root: Path, task: Task) -> str:
    """Return the task's source repo: the repo holding tasks/, a path relative to it, or a URL."""
    if task.repo is None:
        return str(root)
    candidate = root / task.repo
    return str(candidate.resolve()) if git.is_local(str(candidate)) else task.repo


def landing_repo(root: Path, task: Task) -> Path:
    """Return the repo a task's branch lands in: the local source repo, or the local cache of a URL."""
    source = source_repo(root, task)
    return Path(source) if git.is_local(source) else git.ensure_cache(source)


@dataclass(frozen=True)
class Landing:
    """A result's commits, already in the repo they land in; only the branch is left to move."""

    repo: Path
    branch: str
    head: str


def import_result(root: Path, state_dir: Path, task: Task, result: TaskResult) -> Landing | None:
    """Bring the result bundle's commits into the source repo (URL repos: its local cache); move no ref.

    Any thread may do this; the coordinator moves the branch once it knows the attempt is still live.
    Returns None when the attempt committed nothing.
    """
    repo = landing_repo(root, task)
    bundle = Path(result.bundle_path) if result.bundle_path else None
    if result.bundle_b64:
        bundle = bundles.write_b64(
            result.bundle_b64, AttemptPaths.under(state_dir, task.id, result.attempt).bundle
        )
    if bundle is None:
        return None
    branch = result.branch or task.branch_name
    return Landing(repo, branch, bundles.import_bundle(repo, bundle, branch))


def land(landing: Landing) -> None:
    """Point the task branch (agent/<id>) at the imported commits."""
    bundles.move_branch(landing.repo, landing.branch, landing.head)
