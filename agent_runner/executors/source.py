"""How a worker on another machine gets the source repo (a fetch of its own, or a bundle) and its keys."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from agent_runner.core.errors import ExecutorError, GitError
from agent_runner.core.result import WorkRequest
from agent_runner.repo import bundles, git

NEVER_FORWARDED = frozenset({"GITHUB_TOKEN", "GH_TOKEN"})
SourceMode = Literal["auto", "remote", "bundle"]


def forwarded_secrets(secrets: Mapping[str, str], allowed: Iterable[str]) -> dict[str, str]:
    """Return the secrets a remote worker may get: the allowed model keys, never a GitHub token."""
    names = set(allowed) - NEVER_FORWARDED
    return {k: v for k, v in secrets.items() if k in names}


class RepoSource:
    """Rewrites a request's repo for a remote worker; keeps the last bundle made (they can be large)."""

    def __init__(self) -> None:
        self._bundle: tuple[tuple[str, str], str] | None = None
        self._remotes: dict[tuple[str, str, str | None], tuple[str | None, bool]] = {}
        self._lock = threading.Lock()

    def update(
        self, request: WorkRequest, *, mode: SourceMode, url: str | None, where: str
    ) -> dict[str, Any]:
        """Return the request fields that tell the worker where to get the repo."""
        if request.repo_bundle_b64 or not git.is_local(request.repo):
            return {}
        repo = Path(request.repo)
        base_commit = request.base_commit or self.base_commit(repo, request.base or request.task.base)
        fields: dict[str, Any] = {"base_commit": base_commit}
        url, is_fetchable = self._remote_of(repo, base_commit, url)
        if mode == "remote" or (mode == "auto" and is_fetchable):
            if not url:
                hint = f"set repo_url or source = 'bundle' for {where}"
                raise ExecutorError(f"{repo} has no remote 'origin'; {hint}")
            return {**fields, "repo": url}
        return {**fields, "repo_bundle_b64": self.bundle(repo, base_commit)}

    def _remote_of(self, repo: Path, commit: str, url: str | None) -> tuple[str | None, bool]:
        """Return the URL a worker fetches and whether `commit` is there (cached per repo and commit)."""
        key = (str(repo), commit, url)
        with self._lock:
            known = self._remotes.get(key)
        if known is None:
            found = url or origin_url(repo)
            known = (found, bool(found) and is_pushed(repo, commit))
            with self._lock:
                self._remotes[key] = known
        return known

    @staticmethod
    def base_commit(repo: Path, base: str | None) -> str:
        """Return the commit the attempt starts from, so the worker needs no branch names of its own."""
        try:
            return git.resolve_base(repo, base)
        except GitError as exc:
            raise ExecutorError(f"cannot resolve the base of {repo}: {exc}") from exc

    def bundle(self, repo: Path, base: str) -> str:
        """Return the repo's branches as a base64 bundle (made once per repo state)."""
        try:
            key = (str(repo), git.run_git(repo, "rev-parse", "--branches", base))
        except GitError as exc:
            raise ExecutorError(f"cannot bundle {repo} for a remote worker: {exc}") from exc
        with self._lock:
            if self._bundle is not None and self._bundle[0] == key:
                return self._bundle[1]
        with tempfile.TemporaryDirectory() as tmp:
            data = bundles.read_b64(bundles.bundle_repo(repo, Path(tmp) / "source.bundle"))
        with self._lock:
            self._bundle = (key, data)
        return data


def origin_url(repo: Path) -> str | None:
    """Return the URL of `repo`'s origin remote (relative paths resolved), or None."""
    try:
        url = git.run_git(repo, "config", "--get", "remote.origin.url")
    except GitError:
        return None
    if url and git.is_local(url) and not Path(url).is_absolute():
        url = str((repo / url).resolve())
    return url or None


def is_pushed(repo: Path, commit: str | None) -> bool:
    """Return whether `commit` (default HEAD) is on a branch of a remote, as last fetched."""
    try:
        return bool(git.run_git(repo, "branch", "-r", "--contains", commit or "HEAD").strip())
    except GitError:
        return False
