"""Result and source bundles: write a task's commits, fetch them into a repo, carry them as base64."""

from __future__ import annotations

import base64
from pathlib import Path

from agent_runner.errors import GitError
from agent_runner.git import SAFE_OPTIONS, Checkout, check_branch, run_git


def create_bundle(checkout: Checkout, dest: Path, *, head: str | None = None) -> Path | None:
    """Write the commits base..branch as a bundle at `dest`; None when there are none."""
    repo = checkout.path
    if (head or run_git(repo, "rev-parse", checkout.branch)) == checkout.base_commit:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    run_git(
        repo, "bundle", "create", "-q", str(dest), f"^{checkout.base_commit}", f"refs/heads/{checkout.branch}"
    )
    return dest


def fetch_bundle(repo: Path, bundle: Path, branch: str) -> None:
    """Fetch `branch` from `bundle` into `repo` as the same branch (force; agent/ branches only).

    Git's automatic maintenance does not run after each fetch: the caller runs `maintain` now and then.
    """
    check_branch(branch)
    ref = f"refs/heads/{branch}"
    options = ("-q", "--no-tags", "--no-write-fetch-head", "--no-auto-maintenance")
    try:
        run_git(repo, *SAFE_OPTIONS, "fetch", *options, str(bundle), f"+{ref}:{ref}")
    except GitError as exc:
        if "couldn't find remote ref" in str(exc):
            raise GitError(
                f"{bundle} has no branch {branch}; the worker sent a bundle for another task"
            ) from exc
        raise


def maintain(repo: Path) -> None:
    """Run git's automatic maintenance in `repo`, as a fetch would, unless the repo turned it off."""
    enabled = run_git(repo, "config", "--type=bool", "--default=true", "maintenance.auto")
    if enabled == "true":
        run_git(repo, *SAFE_OPTIONS, "maintenance", "run", "--auto", "--quiet")


def bundle_repo(repo: Path, dest: Path, *, refs: list[str] | None = None) -> Path:
    """Bundle the branches of `repo` (for workers that cannot reach it)."""
    run_git(repo, "bundle", "create", "-q", str(dest), *(refs or ["--branches"]))
    return dest


def write_b64(data: str, dest: Path) -> Path:
    """Decode base64 `data` into the file `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(base64.b64decode(data))
    return dest


def read_b64(path: Path) -> str:
    """Return the file at `path` as base64 text."""
    return base64.b64encode(path.read_bytes()).decode("ascii")
