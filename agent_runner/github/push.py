"""Pushing with git: only branches under agent/ (force only for the task's own branch) and the state branch.

Git runs through `agent_runner.repo.git` in its trusted mode (these are the user's repos, never an agent's
checkout); its failures become GitHubError here. For https remotes the token travels as an HTTP header through
GIT_CONFIG_* environment variables, so it is never in argv, in .git/config, or in the remote URL.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from agent_runner.core.errors import GitError, GitHubError
from agent_runner.core.task import BRANCH_PREFIX
from agent_runner.repo.git import run_git

PROTECTED = frozenset({"main", "master", "develop", "trunk"})


def check_agent_branch(branch: str) -> None:
    """Raise GitHubError unless `branch` is under agent/ (the only branches the runner may push)."""
    if not branch.startswith(BRANCH_PREFIX) or ".." in branch or branch.endswith("/") or " " in branch:
        raise GitHubError(
            f"refusing to push '{branch}': the runner only pushes branches under '{BRANCH_PREFIX}'"
        )


def check_state_branch(branch: str) -> None:
    """Raise GitHubError when the state branch could be a protected or agent branch."""
    if branch in PROTECTED or branch.startswith(BRANCH_PREFIX) or not branch or ".." in branch:
        raise GitHubError(
            f"refusing to use '{branch}' as the state branch; pick a dedicated one like agent-runner/state"
        )


def git(repo: Path, *args: str, env: dict[str, str] | None = None, action: str = "git") -> str:
    """Run git in `repo` and return all of stdout; raise GitHubError with git's message on failure."""
    try:
        return run_git(repo, *args, env=env, whole=True)
    except GitError as exc:
        raise GitHubError(f"{action} failed: {exc.detail}") from exc


def remote_url(repo: Path, remote: str) -> str:
    """Return the URL of `remote`, or raise GitHubError naming the missing remote."""
    try:
        return git(repo, "remote", "get-url", remote, action=f"read remote '{remote}'").strip()
    except GitHubError as exc:
        raise GitHubError(
            f"{repo} has no git remote '{remote}'; add it (git remote add {remote} URL)"
        ) from exc


def auth_env(url: str, token: str | None) -> dict[str, str]:
    """Return environment variables that give git the token for an https remote (empty otherwise)."""
    if not token or not url.startswith("https://"):
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def resolve(repo: Path, ref: str) -> str | None:
    """Return the commit `ref` names in `repo`, or None."""
    try:
        return git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").strip() or None
    except GitHubError:
        return None


def push_branch(
    repo: Path, *, remote: str, branch: str, commit: str, token: str | None, lease: str | None = None
) -> None:
    """Force-push `commit` to the agent branch `branch` on `remote` (the runner owns that branch).

    With `lease` (the commit the branch must still be at on the remote) the push is refused when someone
    pushed to the branch since (`--force-with-lease`).
    """
    check_agent_branch(branch)
    url = remote_url(repo, remote)
    refspec = f"{'' if lease else '+'}{commit}:refs/heads/{branch}"
    leased = [f"--force-with-lease=refs/heads/{branch}:{lease}"] if lease else []
    try:
        git(
            repo,
            "push",
            "--no-verify",
            *leased,
            remote,
            refspec,
            env=auth_env(url, token),
            action=f"git push {branch}",
        )
    except GitHubError as exc:
        raise GitHubError(f"{exc}; the branch stays local, retry with `run-agents publish`") from exc


def fetch_file(repo: Path, *, remote: str, branch: str, path: str, token: str | None) -> str | None:
    """Return `path` as stored on the remote `branch`, or None when the branch or file does not exist."""
    check_state_branch(branch)
    url = remote_url(repo, remote)
    heads = git(
        repo, "ls-remote", "--heads", remote, branch, env=auth_env(url, token), action="git ls-remote"
    )
    if not heads.strip():
        return None
    git(repo, "fetch", "--no-tags", remote, f"+refs/heads/{branch}:refs/agent-runner/state",
        env=auth_env(url, token), action=f"git fetch {branch}")  # fmt: skip
    try:
        return git(repo, "show", f"refs/agent-runner/state:{path}", action="read state file")
    except GitHubError:
        return None


def commit_file(
    repo: Path, *, remote: str, branch: str, path: str, data: bytes, message: str, token: str | None
) -> str:
    """Commit `data` as `path` on top of the remote `branch` (not the work tree), push; return the commit."""
    check_state_branch(branch)
    url = remote_url(repo, remote)
    parent = resolve(repo, "refs/agent-runner/state")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **_identity()}
        if parent:
            git(repo, "read-tree", parent, env=env, action="read the state tree")
        blob_file = Path(tmp) / "blob"
        blob_file.write_bytes(data)
        blob = git(repo, "hash-object", "-w", str(blob_file), action="store the state file").strip()
        git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env, action="stage")
        tree = git(repo, "write-tree", env=env, action="write the state tree").strip()
        old_tree = (
            git(repo, "rev-parse", f"{parent}^{{tree}}", action="read the tree").strip() if parent else ""
        )
        if parent and old_tree == tree:
            return parent  # nothing changed: no empty commit, no push
        args = ["commit-tree", tree, "-m", message, *(["-p", parent] if parent else [])]
        commit = git(repo, *args, env=env, action="commit the state file").strip()
    # No force: a concurrent publisher makes this fail instead of overwriting its queue events.
    git(repo, "push", "--no-verify", remote, f"{commit}:refs/heads/{branch}", env=auth_env(url, token),
        action=f"git push {branch}")  # fmt: skip
    git(repo, "update-ref", "refs/agent-runner/state", commit, action="record the state commit")
    return commit


def _identity() -> dict[str, str]:
    name, email = "agent-runner", "agent-runner@users.noreply.github.com"
    keys = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL")
    return {k: os.environ.get(k) or (name if k.endswith("NAME") else email) for k in keys}
