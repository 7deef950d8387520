"""Git for the whole package, in two modes: trusted repos (`run_git`) and agents' checkouts (`checkout_git`).

Trusted: the user's source repo, the bare cache, a result's landing; git runs there as the user set it up.
Untrusted: a checkout whose work tree the agent wrote. The runner's git state for it lives beside it, in
`runner_git_dir(checkout)`, where the agent's sandbox cannot write; every git command on the checkout uses
that git dir, its own config written by the runner, and no system, global or inherited git settings. The
`.git` folder inside the work tree is the agent's own copy: git never reads it for the runner (a path
named `.git` is never part of a work tree), so nothing the agent wrote is loaded as configuration, run as
a hook, filter or driver, or believed as a commit.

Every git command runs as a plain subprocess (GitPython's wrapper cost 48 ms of imports in every worker
process and 0.2 ms per command, and the runner used nothing else of it); every git failure leaves this
module as GitError. Checkouts are in checkouts.py, bundles in bundles.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agent_runner.core.errors import GitError
from agent_runner.core.task import BRANCH_PREFIX

# The runner's config for its git dir of a checkout (after what a clone writes; later values win). Only
# defaults are restated: nothing else can set them, as git reads no other config there (`checkout_env`).
RUNNER_CONFIG = """\
[core]
\thooksPath = /dev/null
\tfsmonitor = false
\tattributesFile = /dev/null
\texcludesFile = /dev/null
\tquotepath = false
\tlogallrefupdates = false
[gc]
\tauto = 0
[maintenance]
\tauto = false
[diff]
\tignoreSubmodules = all
[submodule]
\trecurse = false
"""
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
    whole: bool = False,
) -> str:
    """Run `git args...` in the trusted repo `cwd`; return its stdout (less one final newline unless `whole`).

    Raises GitError on failure. `stdin` is a real file git reads; with `stdout`, git's output goes there
    instead (and "" is returned).
    """
    out = _run(cwd, args, {**os.environ, **_LOCALE, **AUTHOR_ENV, **(env or {})}, stdin, stdout)
    return out if whole else out.removesuffix("\n")


def runner_git_dir(checkout: Path) -> Path:
    """Return the runner's own git dir of a checkout: beside it, never inside the agent's work tree."""
    return checkout.with_name(checkout.name + ".git")


def checkout_git(
    checkout: Path,
    *args: str,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> str:
    """Run `git args...` on an agent's checkout with the runner's git dir and config only (see above)."""
    return _run(checkout, args, checkout_env(checkout), stdin, stdout).removesuffix("\n")


def checkout_git_bytes(checkout: Path, *args: str, data: bytes = b"", check: bool = True) -> bytes:
    """Run git on an agent's checkout as `checkout_git` does, with `data` as its input; return its output.

    Without `check`, return the output even when git failed.
    """
    proc = _spawn(checkout, args, checkout_env(checkout), data=data)
    if check:
        _check(proc, checkout, args)
    return proc.stdout


def checkout_env(checkout: Path) -> dict[str, str]:
    """Return the environment for git on `checkout`: no GIT_* of ours, no system or global config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {
        **env, **_LOCALE, **AUTHOR_ENV,
        "GIT_DIR": str(runner_git_dir(checkout)), "GIT_WORK_TREE": str(checkout),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1",
    }  # fmt: skip


_LOCALE = {"LANGUAGE": "C", "LC_ALL": "C"}  # callers match git's English messages ("nothing to commit")


def _run(
    cwd: Path | str | None,
    args: tuple[str, ...],
    env: dict[str, str],
    stdin: BinaryIO | None,
    stdout: BinaryIO | None,
) -> str:
    proc = _spawn(cwd, args, env, stdin=stdin, stdout=stdout)
    _check(proc, cwd, args)
    return _text(proc.stdout or b"")


def _spawn(
    cwd: Path | str | None,
    args: tuple[str, ...],
    env: dict[str, str],
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    data: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    argv = ["git", *args]
    try:
        if data:
            return subprocess.run(argv, cwd=cwd, env=env, input=data, capture_output=True, check=False)
        return subprocess.run(
            argv, cwd=cwd, env=env, stdin=stdin or subprocess.DEVNULL,
            stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
    except OSError as exc:
        if cwd is not None and not Path(cwd).is_dir():
            raise GitError(f"cannot run `git {' '.join(args[:2])}`: no folder {cwd}") from exc
        raise GitError(f"cannot run git ({exc}); install git and make sure it is on PATH") from exc


def _check(proc: subprocess.CompletedProcess[bytes], cwd: Path | str | None, args: tuple[str, ...]) -> None:
    if proc.returncode != 0:
        detail = _detail(_text(proc.stderr or proc.stdout or b"")) or f"exit {proc.returncode}"
        raise GitError(f"`git {' '.join(args[:4])}` failed in {cwd}: {detail}", detail=detail)


def _detail(output: str) -> str:
    """Return git's explanation: its remote:, fatal:, error: and rejection lines (else its last lines)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    telling = [line for line in lines if line.startswith(("remote:", "fatal:", "error:", "!"))]
    return " ".join((telling or lines)[-4:])[-600:]


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


def is_repo(path: Path) -> bool:
    """Return whether `path` is in a git repository (its work tree or git dir)."""
    try:
        run_git(path, "rev-parse", "--git-dir")
    except GitError:
        return False
    return True


def _no_base(repo: Path, base: str | None) -> str:
    """Say why `repo` has no commit for `base`: no repo at all, no commit yet, or no such branch."""
    if not is_repo(repo):
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
    """Add the current untracked files (setup output, copied files) to the runner's info/exclude."""
    out = checkout_git(
        checkout, "status", "--porcelain", "--untracked-files=normal", "--ignore-submodules=all"
    )
    found = [line[3:] for line in out.splitlines() if line.startswith("?? ")]
    if found:
        info = runner_git_dir(checkout) / "info"
        info.mkdir(parents=True, exist_ok=True)
        with open(info / "exclude", "a", encoding="utf-8") as fh:
            fh.writelines(f"/{name.strip(chr(34))}\n" for name in found)
    return found


def commit_all(checkout: Checkout, message: str) -> str:
    """Stage the whole work tree and commit it onto the task branch (see `commit_tree`); return the head."""
    checkout_git(checkout.path, "add", "-A")
    return commit_tree(checkout, checkout_git(checkout.path, "write-tree"), message)


def commit_tree(checkout: Checkout, tree: str, message: str) -> str:
    """Commit exactly `tree` onto the base, on the task branch; return the head (the base itself when the
    tree is the base's). The runner's git dir holds the only commit that can land: one, by the runner, on
    the base commit (whatever the agent committed in its own `.git`), of a tree the caller chose."""
    repo, base = checkout.path, checkout.base_commit
    if checkout_git(repo, "rev-parse", "--verify", "-q", f"{base}^{{tree}}") == tree:
        return base
    head = checkout_git(repo, "commit-tree", "--no-gpg-sign", tree, "-p", base, "-m", message)
    checkout_git(repo, "update-ref", f"refs/heads/{checkout.branch}", head)
    return head


def changed_files(checkout: Path, base: str, head: str) -> list[str]:
    """Return the paths that differ between two commits of a checkout."""
    out = checkout_git(checkout, "diff", "--name-only", "--no-renames", base, head)
    return [line for line in out.splitlines() if line]


def check_branch(branch: str) -> None:
    """Raise GitError unless `branch` is one the runner may write (under agent/)."""
    if not branch.startswith(BRANCH_PREFIX) or ".." in branch:
        raise GitError(
            f"refusing to write branch '{branch}': the runner only writes branches under {BRANCH_PREFIX}"
        )


def merge_trees(repo: Path, ours: str, theirs: str) -> tuple[str, list[str]]:
    """Merge two commits of the trusted `repo` by git alone (no work tree, nothing run from either side).

    Return the merged tree and the paths in conflict (none: a clean merge, and the tree is its result).
    """
    args = ("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs)
    git_dir = run_git(repo, "rev-parse", "--absolute-git-dir")
    with tempfile.TemporaryDirectory(prefix="merge-") as empty:
        proc = _spawn(empty, args, _merge_env(git_dir, Path(empty)))
    if proc.returncode not in (0, 1):  # 1: conflicts, reported in the output
        _check(proc, repo, args)
    lines = _text(proc.stdout or b"").splitlines()
    conflicts = dict.fromkeys(line for line in lines[1:] if line) if proc.returncode == 1 else {}
    return lines[0], list(conflicts)


def _merge_env(git_dir: str, empty: Path) -> dict[str, str]:
    """Return the environment of a git-only merge: the repo's objects and refs, but an empty work tree and
    index and no system or global config, so no `.gitattributes` (of the work tree, which may hold what an
    agent landed) selects a merge driver, filter or conversion, and no user driver is defined to run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {
        **env, **_LOCALE, **AUTHOR_ENV, "GIT_DIR": git_dir, "GIT_WORK_TREE": str(empty),
        "GIT_INDEX_FILE": str(empty / "index"), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
    }  # fmt: skip
