"""Where a task's work comes from: its source repo, the base commit it branches off, and the targets there.

fix-lint and write-tests work on their `paths`: a path the base commit does not have (a typo, a file not yet
committed) is a task-file error naming the file and 'paths', refused at `add` and flagged at intake, so ruff's
"no such file" never reaches a model as a violation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from agent_runner.core.errors import ConfigError, GitError, TaskFileError
from agent_runner.core.task import InvalidTask, Task, TaskKind, TaskSet
from agent_runner.repo import git

TARGET_KINDS = frozenset({TaskKind.FIX_LINT, TaskKind.WRITE_TESTS})  # kinds whose paths must exist


def source_of(root: Path, repo: str | None) -> str:
    """Return the source repo a task's `repo` field names (None: the repo holding tasks/), or its URL."""
    if repo is None:
        return str(root)
    candidate = root / repo
    return str(candidate.resolve()) if git.is_local(str(candidate)) else repo


def require_repo(root: Path) -> None:
    """Refuse to work for a folder that is not in a git repository (tasks branch off its commits)."""
    if not git.is_repo(root):
        raise ConfigError(f"{root} is not a git repository; run `git init` there first (or pass --root)")


class BaseCommits:
    """The base commit of each (local source repo, base branch), read again after `ttl_s` (watch mode).

    A base that cannot be resolved (no repo, no commit yet, no such branch) is remembered as its GitError
    for as long, so asking about a held task costs no git call per dispatch round.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._seen: dict[tuple[str, str | None], tuple[str | GitError, float]] = {}

    def get(self, repo: str, base: str | None) -> str | None:
        """Return the commit (None for a repo given by URL); raise GitError when there is none."""
        if not git.is_local(repo):
            return None
        seen = self._seen.get((repo, base))
        if seen is None or time.monotonic() - seen[1] > self.ttl_s:
            try:
                found: str | GitError = git.resolve_base(Path(repo), base)
            except GitError as exc:
                found = exc
            seen = self._seen[(repo, base)] = (found, time.monotonic())
        if isinstance(seen[0], GitError):
            raise seen[0]
        return seen[0]


def missing_paths(repo: str, base: str | None, paths: Iterable[str]) -> tuple[list[str], str]:
    """Return the paths that `repo` at `base` does not have, and where they were looked for.

    A repo with no commit yet is looked at on disk; a repo given by URL is not looked at.
    """
    wanted = {path: _normal(path) for path in paths}
    wanted = {path: norm for path, norm in wanted.items() if norm != "."}
    if not wanted or not git.is_local(repo):
        return [], repo
    try:
        commit = git.resolve_base(Path(repo), base)
    except GitError:  # no commit yet: what is on disk now is what the first commit will hold
        on_disk = [path for path, norm in wanted.items() if not (Path(repo) / norm).exists()]
        return on_disk, f"{repo} (no commit yet: looked on disk)"
    args = ("--literal-pathspecs", "ls-tree", "--full-tree", "--name-only", "-z", commit, "--")
    names = git.run_git(repo, *args, *sorted(set(wanted.values()))).split("\0")
    found = [name for name in names if name]
    missing = [p for p, n in wanted.items() if not any(f == n or f.startswith(f"{n}/") for f in found)]
    return missing, f"{repo} at {base or 'HEAD'} ({commit[:10]})"


def _normal(path: str) -> str:
    return str(PurePosixPath(path.replace("\\", "/")))


def target_problem(root: Path, task: Task) -> str | None:
    """Return why a fix-lint or write-tests task's targets cannot be worked on (a missing path), or None."""
    if task.kind not in TARGET_KINDS or not task.paths:
        return None
    missing, where = missing_paths(source_of(root, task.repo), task.base, task.paths)
    return _describe(missing, where)


def _describe(missing: Iterable[str], where: str) -> str | None:
    names = ", ".join(repr(path) for path in missing)
    hint = "targets must be files or folders of the commit the task starts from (commit new files first)"
    return f"{names} not found in {where}; {hint}" if names else None


def require_targets(root: Path, task: Task, *, source: str) -> None:
    """Raise TaskFileError (field 'paths') when the task's targets are missing from its base."""
    if problem := target_problem(root, task):
        raise TaskFileError(source, problem, field="paths")


def check_targets(root: Path, found: TaskSet, *, only: Iterable[str]) -> None:
    """Move the tasks among `only` whose targets are missing to the invalid ones (naming file and 'paths').

    One look per (source repo, base) for all the tasks on it, however many there are.
    """
    groups: dict[tuple[str, str | None], list[Task]] = {}
    for task_id in only:
        task = found.tasks.get(task_id)
        if task is not None and task.kind in TARGET_KINDS and task.paths:
            groups.setdefault((source_of(root, task.repo), task.base), []).append(task)
    for (repo, base), tasks in groups.items():
        try:
            missing, where = missing_paths(repo, base, {path for task in tasks for path in task.paths})
        except GitError:
            continue  # the repo cannot be read now: the scheduler holds its tasks and says why
        for task in tasks:
            if problem := _describe([path for path in task.paths if path in missing], where):
                file = found.files.pop(task.id)
                del found.tasks[task.id]
                found.invalid.append(InvalidTask(file, task.id, f"{file}: field 'paths': {problem}"))
