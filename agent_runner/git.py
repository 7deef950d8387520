"""Git for the runner: running git, a bare cache per source repo, base commits, commits and branch names.

Every git command runs through `run_git` (a plain subprocess: GitPython's wrapper cost 48 ms of imports in
every worker process and 0.2 ms per command, and the runner used nothing else of it); every git failure
leaves this module as GitError. Checkouts are in checkouts.py, bundles in bundles.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agent_runner.errors import GitError
from agent_runner.task import BRANCH_PREFIX

# Options for every git command the runner runs inside a checkout the agent could have edited.
SAFE_OPTIONS = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
# A checkout lives for one attempt: no `git maintenance run --auto` after its commits.
NO_MAINTENANCE = ("-c", "maintenance.auto=false", "-c", "gc.auto=0")
AUTHOR_ENV = {
    "GIT_AUTHOR_NAME": "agent-runner",
    "GIT_AUTHOR_EMAIL": "agent-runner@localhost",
    "GIT_COMMITTER_NAME": "agent-runner",
    "GIT_COMMITTER_EMAIL": "agent-runner@localhost",
    "GIT_TERMINAL_PROMPT": "0",
}
CACHE_FRESH_S = 60.0


def run_git(
    cwd: Path | str | None,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> str:
    """Run `git args...` in `cwd` and return its stdout (less one final newline); raise GitError on failure.

    `stdin` is a real file git reads; with `stdout`, git's output goes there instead (and "" is returned).
    """
    argv = ["git", *args]
    # C locale: callers match git's English messages ("nothing to commit").
    full_env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **AUTHOR_ENV, **(env or {})}
    try:
        proc = subprocess.run(
            argv, cwd=cwd, env=full_env, stdin=stdin or subprocess.DEVNULL,
            stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    except OSError as exc:
        if cwd is not None and not Path(cwd).is_dir():
            raise GitError(f"cannot run `git {' '.join(args[:2])}`: no folder {cwd}") from exc
        raise GitError(f"cannot run git ({exc}); install git and make sure it is on PATH") from exc
    if proc.returncode != 0:
        detail = _text(proc.stderr or proc.stdout or b"").strip().replace("\n", " ")[-600:]
        raise GitError(f"`git {' '.join(args[:4])}` failed in {cwd}: {detail or f'exit {proc.returncode}'}")
    out = _text(proc.stdout or b"")
    return out[:-1] if out.endswith("\n") else out


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def home_dir() -> Path:
    """Return the runner's per-machine home (AGENT_RUNNER_HOME or ~/.cache/agent-runner)."""
    return Path(os.environ.get("AGENT_RUNNER_HOME") or Path.home() / ".cache" / "agent-runner")


def is_local(repo: str) -> bool:
    """Return whether `repo` is a path on this machine (not a URL)."""
    return "://" not in repo and not (":" in repo.split("/")[0] and not Path(repo).exists())


def cache_path(repo: str) -> Path:
    """Return the bare cache folder for a source repo (keyed by its resolved path or URL)."""
    key = str(Path(repo).resolve()) if is_local(repo) else repo.rstrip("/")
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return home_dir() / "repos" / f"{digest}.git"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def has_commit(repo: Path, rev: str) -> bool:
    """Return whether `rev` names a commit present in `repo` (and remember its tree, see `known_tree`)."""
    try:
        tree = run_git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}^{{tree}}")
    except GitError:
        return False
    _TREES[(str(repo), rev)] = tree  # a commit's tree never changes
    return True


def known_tree(repo: Path, rev: str) -> str | None:
    """Return the tree of commit `rev` when `has_commit` has seen it in `repo` (no git command)."""
    return _TREES.get((str(repo), rev))


_TREES: dict[tuple[str, str], str] = {}


def ensure_cache(
    repo: str, *, need: str | None = None, force: bool = False, bundle: Path | None = None
) -> Path:
    """Create or update the bare cache of `repo` (locked; fetched only when stale or missing `need`).

    Raises GitError when the commit `need` is not there even after fetching.
    """
    cache = cache_path(repo)
    with _file_lock(cache.with_suffix(".lock")):
        is_fetched = True
        if not (cache / "HEAD").exists():
            _create_cache(repo, cache, bundle)
        elif bundle is not None:
            _fetch_all(cache, str(bundle))
        elif _needs_fetch(cache, need, force):
            _fetch_all(cache, _source_url(repo))
        else:
            is_fetched = False  # and `need`, if given, is known to be there
        if is_fetched and need is not None and not has_commit(cache, need):
            raise GitError(f"base commit {need} is not in {repo}; was the base branch rewritten or deleted?")
        stamp = cache / "agent-runner-fetched"
        stamp.touch()
    return cache


def _needs_fetch(cache: Path, need: str | None, force: bool) -> bool:
    if force:
        return True
    if need is not None:
        return not has_commit(cache, need)
    stamp = cache / "agent-runner-fetched"
    return not stamp.exists() or time.time() - stamp.stat().st_mtime > CACHE_FRESH_S


def _source_url(repo: str) -> str:
    return str(Path(repo).resolve()) if is_local(repo) else repo


def _create_cache(repo: str, cache: Path, bundle: Path | None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=cache.name + ".", dir=cache.parent))
    try:
        run_git(None, "init", "-q", "--bare", str(tmp))
        _fetch_all(tmp, str(bundle) if bundle else _source_url(repo))
        head = _remote_head(str(bundle) if bundle else _source_url(repo))
        if head:
            run_git(tmp, "symbolic-ref", "HEAD", head)
        os.replace(tmp, cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_all(cache: Path, source: str) -> None:
    # Packs, never loose objects: each checkout hard-links the cache's object files, so few files is faster.
    refspec = "+refs/heads/*:refs/heads/*"
    run_git(cache, "-c", "fetch.unpackLimit=1", "fetch", "-q", "--prune", "--no-tags", source, refspec)


def _remote_head(source: str) -> str | None:
    for line in run_git(None, "ls-remote", "--symref", source, "HEAD").splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            return line[5:].split("\t")[0]
    return None


def resolve_base(repo: Path, base: str | None) -> str:
    """Return the commit of branch/rev `base` in `repo` (default: the repo's HEAD branch)."""
    # Without a base: HEAD, or (in a cache built from a bundle, whose HEAD may be unborn) main or master.
    candidates = [f"refs/heads/{base}", base] if base else ["HEAD", "refs/heads/main", "refs/heads/master"]
    for rev in candidates:
        try:
            return run_git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
        except GitError:
            continue
    raise GitError(_no_base(repo, base))


def _no_base(repo: Path, base: str | None) -> str:
    """Say why `repo` has no commit for `base`: no repo at all, no commit yet, or no such branch."""
    try:
        run_git(repo, "rev-parse", "--git-dir")
    except GitError:
        return f"{repo} is not a git repository: tasks branch off its commits (`git init`, commit, run again)"
    if base is None and not run_git(repo, "rev-list", "-n1", "--all"):
        return f"{repo} has no commits yet: commit your code first (each attempt branches off a commit)"
    if base is None:
        return f"{repo} has no HEAD branch (nor main or master): name one in the task's `base` field"
    return f"base '{base}' is not a branch or commit of {repo}; check the task's `base` field"


@dataclass(frozen=True)
class Checkout:
    """A private clone for one attempt, on the task branch at the base commit."""

    path: Path
    branch: str
    base_commit: str
    base_tree: str | None = None  # the base commit's tree, when known without asking git


def exclude_untracked(checkout: Path) -> list[str]:
    """Add the current untracked files (setup output, copied files) to .git/info/exclude; return them."""
    out = run_git(checkout, *SAFE_OPTIONS, "status", "--porcelain", "--untracked-files=normal")
    found = [line[3:] for line in out.splitlines() if line.startswith("?? ")]
    if found:
        info = checkout / ".git" / "info"
        info.mkdir(parents=True, exist_ok=True)
        with open(info / "exclude", "a", encoding="utf-8") as fh:
            fh.writelines(f"/{name.strip(chr(34))}\n" for name in found)
    return found


def commit_all(checkout: Checkout, message: str, *, is_staged: bool = False) -> str:
    """Stage everything, commit it (when anything changed) onto the task branch; return the head commit.

    With `is_staged`, commit the index as the caller just staged (and checked) it.
    """
    repo = checkout.path
    if not is_staged:
        run_git(repo, *SAFE_OPTIONS, "add", "-A")
    try:
        run_git(repo, *SAFE_OPTIONS, *NO_MAINTENANCE, "commit", "-q", "--no-verify", "-m", message)
    except GitError as exc:
        if "nothing to commit" not in str(exc) and "nothing added to commit" not in str(exc):
            raise
    else:
        if tip := _written_tip(repo, checkout.branch):
            return tip
    head, branch_head = run_git(repo, "rev-parse", "HEAD", f"refs/heads/{checkout.branch}").splitlines()
    if branch_head != head:  # the agent switched branches: the task branch ends at what was committed
        run_git(repo, "update-ref", f"refs/heads/{checkout.branch}", head)
    return head


def _written_tip(repo: Path, branch: str) -> str | None:
    """Return the commit a commit just wrote to `branch` when HEAD is that branch (None: ask git)."""
    refs = repo / ".git"
    try:  # the commit wrote the ref as a plain file (lock and rename), so it is the new commit
        if (refs / "HEAD").read_text(encoding="ascii") != f"ref: refs/heads/{branch}\n":
            return None
        tip = (refs / "refs" / "heads" / branch).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return tip if re.fullmatch("[0-9a-f]{40}", tip) else None


def changed_files(repo: Path, base: str, head: str) -> list[str]:
    """Return the paths that differ between two commits."""
    out = run_git(repo, "diff", "--name-only", "--no-renames", base, head)
    return [line for line in out.splitlines() if line]


def check_branch(branch: str) -> None:
    """Raise GitError unless `branch` is one the runner may write (under agent/)."""
    if not branch.startswith(BRANCH_PREFIX) or ".." in branch:
        raise GitError(
            f"refusing to write branch '{branch}': the runner only writes branches under {BRANCH_PREFIX}"
        )
