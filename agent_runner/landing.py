"""Where a task's work comes from and lands: its source repo, and the result bundle fetched back into it."""

from __future__ import annotations

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


def land_result(root: Path, state_dir: Path, task: Task, result: TaskResult) -> Path | None:
    """Fetch the result's bundle into the source repo (URL repos: its local cache) as agent/<id>.

    Returns the repo it landed in, or None when the attempt committed nothing.
    """
    repo = landing_repo(root, task)
    bundle = Path(result.bundle_path) if result.bundle_path else None
    if result.bundle_b64:
        bundle = bundles.write_b64(
            result.bundle_b64, AttemptPaths.under(state_dir, task.id, result.attempt).bundle
        )
    if bundle is None:
        return None
    bundles.fetch_bundle(repo, bundle, result.branch or task.branch_name)
    return repo
