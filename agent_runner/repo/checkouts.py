"""Checkouts: a private clone of the cache per attempt, made in-process or by git, and refreshed for re-use.

A checkout is a work tree the agent owns and the runner's git dir beside it (`git.runner_git_dir`): a
clone of the cache with hard-linked objects (not a worktree: those share hooks and config between
checkouts). The agent gets a `.git` of its own in the work tree (`give_agent_git`), whose objects it
borrows read-only from the runner's. Git runs through `git.checkout_git`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from agent_runner.core.errors import GitError
from agent_runner.repo.git import RUNNER_CONFIG, Checkout, check_branch, checkout_git, run_git, runner_git_dir


def make_checkout(cache: Path, dest: Path, *, branch: str | None, base_commit: str) -> Checkout:
    """Clone the cache into `dest` with hard-linked objects and switch to `branch` at `base_commit`.

    Without a branch the checkout is detached at the base: one made ahead, which `adopt` puts on its branch.
    """
    if branch is not None:
        check_branch(branch)
    remove_checkout(dest)
    dest.mkdir(parents=True)
    _clone_cache(cache, runner_git_dir(dest))
    # Parallel checkout (one process per CPU) writes large trees faster; small ones stay serial.
    checkout_git(dest, "-c", "checkout.workers=0", "checkout", "-q", *_target(branch, base_commit))
    _keep_index(dest)
    return Checkout(dest, branch or "", base_commit)


def adopt(dest: Path, *, branch: str, base_commit: str) -> Checkout:
    """Put a checkout made ahead (detached at `base_commit`, nothing else touched) on `branch`."""
    check_branch(branch)
    git_dir = runner_git_dir(dest)
    head = (git_dir / "HEAD").read_text(encoding="ascii").strip()
    if head != base_commit:
        raise GitError(f"{dest} is at {head[:40]}, not at {base_commit}; it cannot be used for this attempt")
    if (git_dir / "reftable").exists() or not _new_branch_file(git_dir, branch, base_commit):
        checkout_git(dest, "checkout", "-q", "-b", branch)
    return Checkout(dest, branch, base_commit)


def _new_branch_file(git_dir: Path, branch: str, commit: str) -> bool:
    """Create `branch` at `commit` and put HEAD on it as git's files backend stores them (no process).

    Nothing else changes: the work tree and index already hold `commit`. False when the branch exists.
    """
    ref = git_dir / "refs" / "heads" / branch
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        with open(ref, "x", encoding="ascii") as fh:  # exclusive: never over an existing branch
            fh.write(f"{commit}\n")
    except OSError:
        return False
    lock = git_dir / "HEAD.lock"  # git's own lock file name: a git command running here would wait
    lock.write_text(f"ref: refs/heads/{branch}\n", encoding="ascii")
    os.replace(lock, git_dir / "HEAD")
    return True


def _target(branch: str | None, base_commit: str) -> tuple[str, ...]:
    return ("-b", branch, base_commit) if branch else ("--detach", base_commit)


def _clone_cache(cache: Path, git_dir: Path) -> None:
    """Make `git_dir` what `git clone --local --no-checkout` of the cache makes, with the runner's config.

    Done in-process when the cache allows.
    """
    try:
        if _link_clone(cache, git_dir):
            return _harden(git_dir)
    except OSError:  # another file system (no hard links) or a repack under us: let git clone copy
        pass
    shutil.rmtree(git_dir, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".clone-", dir=git_dir.parent))
    try:  # a path (no --local): git hard-links where it can and copies where it cannot
        run_git(None, "clone", "-q", "--no-checkout", "--template=", str(cache), str(tmp / "c"))
        os.replace(tmp / "c" / ".git", git_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _harden(git_dir)


def _harden(git_dir: Path) -> None:
    with open(git_dir / "config", "a", encoding="utf-8") as fh:
        fh.write(RUNNER_CONFIG)


def _link_clone(cache: Path, git_dir: Path) -> bool:
    """Build what `clone --local --no-checkout` builds from a plain cache, without its 2 processes.

    Objects are hard-linked, the cache's branches become origin's plus a local default branch. A checkout
    lives for one attempt, so it keeps no reflogs. Returns False, having written nothing, for a cache in
    another format (reftable, sha256: any extension).
    """
    config = (cache / "config").read_text(encoding="utf-8")
    if "repositoryformatversion = 0" not in config or (cache / "reftable").exists():
        return False
    branches = _cache_branches(cache)
    head = (cache / "HEAD").read_text(encoding="utf-8").strip().removeprefix("ref: refs/heads/")
    if any(c in f"{head}{cache}" for c in '"\\\n'):  # nothing that needs quoting in the config file
        return False
    for sub in ("objects/pack", "refs/heads"):  # what git needs; it makes the rest when it needs it
        (git_dir / sub).mkdir(parents=True)
    _link_objects(cache / "objects", git_dir / "objects")
    refs = {f"refs/remotes/origin/{name}": oid for name, oid in branches.items()}
    if head in branches:
        refs[f"refs/heads/{head}"] = branches[head]
        (git_dir / "refs" / "remotes" / "origin").mkdir(parents=True)
        (git_dir / "refs" / "remotes" / "origin" / "HEAD").write_text(f"ref: refs/remotes/origin/{head}\n")
    lines = "".join(f"{oid} {name}\n" for name, oid in sorted(refs.items()))
    (git_dir / "packed-refs").write_text(f"# pack-refs with: peeled fully-peeled sorted \n{lines}")
    (git_dir / "HEAD").write_text(f"ref: refs/heads/{head}\n", encoding="utf-8")
    (git_dir / "config").write_text(_CLONE_CONFIG.format(url=cache, head=head), encoding="utf-8")
    return True


_CLONE_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = false
[remote "origin"]
\turl = "{url}"
\tfetch = +refs/heads/*:refs/remotes/origin/*
[branch "{head}"]
\tremote = origin
\tmerge = refs/heads/{head}
"""


def _cache_branches(cache: Path) -> dict[str, str]:
    """Return the cache's branches (name -> commit): packed ones, then loose ones, which win."""
    branches: dict[str, str] = {}
    packed = cache / "packed-refs"
    if packed.exists():
        for line in packed.read_text(encoding="utf-8").splitlines():
            oid, _, name = line.partition(" ")
            if name.startswith("refs/heads/"):
                branches[name.removeprefix("refs/heads/")] = oid
    heads = cache / "refs" / "heads"
    for path in heads.rglob("*"):
        if path.is_file() and not path.name.endswith(".lock"):  # a lock: that ref is being written
            oid = path.read_text(encoding="utf-8").strip()
            if re.fullmatch("[0-9a-f]{40}", oid):
                branches[path.relative_to(heads).as_posix()] = oid
    return branches


def _link_objects(source: Path, dest: Path) -> None:
    """Hard-link the packs and loose objects of `source` into `dest` (git clone --local's way)."""
    with os.scandir(source) as entries:
        folders = [entry for entry in entries if entry.is_dir() and entry.name != "info"]
    for folder in folders:
        target = dest / folder.name
        target.mkdir(exist_ok=True)
        with os.scandir(folder.path) as files:
            for file in files:
                if not file.name.startswith("tmp_"):  # a fetch's pack still being written
                    os.link(file.path, target / file.name)


def trusted_index(checkout: Path) -> Path:
    """Return where the runner keeps its copy of a fresh checkout's index (outside the checkout)."""
    return checkout.with_name(checkout.name + ".index")


def _keep_index(checkout: Path) -> None:
    shutil.copy2(runner_git_dir(checkout) / "index", trusted_index(checkout))  # its mtime tells racy entries


def give_agent_git(checkout: Checkout) -> None:
    """Give the agent a `.git` of its own in the work tree: on the task branch at the base, same index.

    It borrows the runner's objects through `alternates` (read-only in the sandbox) and writes its own.
    The runner never reads it: whatever the agent does there stays there.
    """
    mine, theirs = runner_git_dir(checkout.path), checkout.path / ".git"
    remove_path(theirs)
    (theirs / "objects" / "info").mkdir(parents=True)
    (theirs / "refs" / "heads").mkdir(parents=True)
    (theirs / "objects" / "info" / "alternates").write_text(f"{mine / 'objects'}\n", encoding="utf-8")
    branch = checkout.branch or "agent-runner-base"
    _write_ref(theirs / "refs" / "heads" / branch, checkout.base_commit)
    (theirs / "HEAD").write_text(f"ref: refs/heads/{branch}\n", encoding="ascii")
    (theirs / "config").write_text(_AGENT_CONFIG, encoding="utf-8")
    shutil.copyfile(mine / "index", theirs / "index")


_AGENT_CONFIG = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"


def _write_ref(path: Path, commit: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{commit}\n", encoding="ascii")


def refresh_checkout(cache: Path, dest: Path, *, branch: str | None, base_commit: str) -> Checkout:
    """Turn a used checkout at `dest` into a fresh one: a new git dir from the cache, changed files restored.

    Nothing of the old git state survives (the agent's `.git`, the runner's refs, objects, index). The
    index is the runner's own copy taken when the checkout was made (`trusted_index`); every file changed
    since then (its ctime, which nobody can set back, is not older than that copy) is deleted first, so
    git's to-the-second stat checks trust only untouched files and `checkout -f` restores the rest.
    Without the copy every file is verified by content. Then untracked and ignored files go (`clean`).
    """
    if branch is not None:
        check_branch(branch)
    saved = trusted_index(dest)
    is_trusted = saved.is_file() and not saved.is_symlink()
    if is_trusted:
        _drop_changed_since(dest, saved.stat().st_mtime_ns)
    remove_path(dest / ".git")
    git_dir = runner_git_dir(dest)
    remove_path(git_dir)
    _clone_cache(cache, git_dir)
    if is_trusted:
        shutil.copyfile(saved, git_dir / "index")  # dated now: what is left is known unchanged
    else:
        checkout_git(dest, "read-tree", base_commit)
        with contextlib.suppress(GitError):  # files that differ are reported; checkout -f rewrites them
            checkout_git(dest, "update-index", "-q", "--refresh")
    target = ("-B", branch, base_commit) if branch else ("--detach", base_commit)
    checkout_git(dest, "-c", "checkout.workers=0", "checkout", "-q", "-f", *target)
    checkout_git(dest, "clean", "-q", "-ffdx")
    _keep_index(dest)
    return Checkout(dest, branch or "", base_commit)


def _drop_changed_since(checkout: Path, since_ns: int) -> None:
    """Delete every file and symlink (outside .git) whose ctime is not older than `since_ns`."""
    folders = [checkout]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path != str(checkout / ".git"):
                        folders.append(Path(entry.path))
                elif entry.stat(follow_symlinks=False).st_ctime_ns >= since_ns:
                    os.unlink(entry.path)


def remove_path(path: Path) -> None:
    """Delete a file, symlink or folder tree at `path` if there is one."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def runner_files(checkout: Path) -> tuple[Path, Path]:
    """Return what the runner keeps beside a checkout: its git dir and its copy of the fresh index."""
    return runner_git_dir(checkout), trusted_index(checkout)


def remove_checkout(path: Path) -> None:
    """Delete a checkout folder and the runner's files beside it (best effort)."""
    shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(runner_git_dir(path), ignore_errors=True)
    trusted_index(path).unlink(missing_ok=True)
    # The kept marker goes with it (attempt numbers are never reused); the owner's lock does not: an attempt
    # that clears a leftover at its own path holds it (ownership.remove_dead removes a dead attempt's).
    path.with_name(path.name + ".kept").unlink(missing_ok=True)
