"""Checkouts kept for later attempts on this machine: finished ones parked for a refresh, and ones made ahead.

A made-ahead checkout is detached at its base commit, named `<base>.<tree>.<pid>.<ns>` in `ready/<repo>/`;
the attempt that takes it (a rename: never twice) puts it on its branch. A parked one is a finished
checkout of a large repo, refreshed to the next base instead of cloned again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from agent_runner.core.errors import GitError
from agent_runner.repo import bundles, checkouts, git
from agent_runner.repo.checkouts import remove_checkout
from agent_runner.repo.layout import AttemptPaths

POOL_SIZE = 8  # finished checkouts kept per repo for re-use: refreshing one beats a new clone on big repos
READY_SIZE = 8  # checkouts made ahead per repo, at most (local workers keep one more than their slots)
STALE_S = 600.0  # a half-made checkout this old was left by a process that died
PARK_MIN_INDEX_BYTES = 50_000  # about 500 tracked files: below that a fresh clone is as fast
log = logging.getLogger(__name__)


def ready_dir(pool: Path) -> Path:
    """Return the folder of checkouts made ahead for a repo (beside its pool of parked ones)."""
    return pool.parent.parent / "ready" / pool.name


def take_ready(ready: Path, base: str, dest: Path) -> str | None:
    """Move a checkout made ahead at `base` to `dest` (atomic, so never taken twice); return its name."""
    if not ready.is_dir():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _take_first(sorted(ready.glob(f"{base}.*")), dest)


def _ready_name(base: str, tree: str | None) -> str:
    """Name a checkout made ahead: its base commit, the base's tree when known, and a unique suffix."""
    tree_part = f"{tree}." if tree else ""
    return f"{base}.{tree_part}{os.getpid()}.{time.monotonic_ns()}"


def tree_in(name: str) -> str | None:
    """Return the base tree a checkout made ahead was named with (None for a name without one)."""
    parts = name.split(".")
    return parts[1] if len(parts) == 4 and bundles.OBJECT_ID.fullmatch(parts[1]) else None


def make_ready(
    cache: Path, pool: Path, base: str, *, keep: int = READY_SIZE, tree: str | None = None
) -> Path | None:
    """Make one checkout at `base` for a later attempt (a parked one refreshed, else a clone).

    Checkouts made ahead at other bases, and half-made ones older than STALE_S, are deleted first. Returns
    the new checkout, or None when `keep` (at most READY_SIZE) are waiting already.
    """
    ready = ready_dir(pool)
    ready.mkdir(parents=True, exist_ok=True)
    waiting = 0
    for entry in ready.iterdir():
        is_other_base = not entry.name.startswith(f"{base}.")
        if is_other_base or (entry.name.endswith(".tmp") and time.time() - entry.stat().st_mtime > STALE_S):
            if entry.is_dir():
                remove_checkout(entry)
            else:
                entry.unlink(missing_ok=True)
        elif not entry.name.endswith(RUNNER_SUFFIXES):
            waiting += 1
    if waiting >= min(keep, READY_SIZE):
        return None
    tree = tree or git.known_tree(cache, base)
    if tree is None and git.has_commit(cache, base):  # the taker then needs not ask for the base's tree
        tree = git.known_tree(cache, base)
    name = _ready_name(base, tree)
    tmp = ready / f"{name}.tmp"
    if not (take_parked(pool, tmp) and _refreshed(cache, tmp, base)):
        checkouts.make_checkout(cache, tmp, branch=None, base_commit=base)
    _move_runner_files(tmp, ready / name)
    os.replace(tmp, ready / name)
    return ready / name


def _refreshed(cache: Path, checkout: Path, base: str) -> bool:
    try:
        checkouts.refresh_checkout(cache, checkout, branch=None, base_commit=base)
    except (GitError, OSError):
        remove_checkout(checkout)
        return False
    return True


def note_ahead(checkout: git.Checkout, repo: str, paths: AttemptPaths) -> None:
    """Remember to make a checkout like `checkout` for the next attempt here (`make_noted_ahead`)."""
    _AHEAD.append((repo, paths, checkout.base_commit, checkout.base_tree))


def make_noted_ahead(keep: int) -> None:
    """Make one checkout where `note_ahead` asked, unless `keep` wait there (after the result is out).

    One per attempt replaces the one it took; attempts that found none (the first of a run) add one.
    """
    while _AHEAD:
        repo, paths, base, tree = _AHEAD.pop()
        try:
            make_ready(git.cache_path(repo), pool_dir(paths, repo), base, keep=keep, tree=tree)
        except (GitError, OSError) as exc:  # an optimisation only: the next attempt clones instead
            log.info("no checkout made ahead: %s", exc)


_AHEAD: list[tuple[str, AttemptPaths, str, str | None]] = []


def pool_for(workdir: Path, repo: str) -> Path:
    """Return the folder of parked checkouts of `repo` under the state folder `workdir`."""
    return workdir / "pool" / git.cache_path(repo).stem


def pool_dir(paths: AttemptPaths, repo: str) -> Path:
    """Return the folder of finished checkouts of `repo` kept for re-use on this machine."""
    return pool_for(paths.checkout.parent.parent, repo)


def take_parked(pool: Path, dest: Path) -> bool:
    """Move a parked checkout (and the runner's copy of its index) to `dest`; atomic, so never taken twice."""
    if not pool.is_dir():
        return False
    return _take_first(sorted(pool.iterdir()), dest) is not None


def _take_first(entries: list[Path], dest: Path) -> str | None:
    """Move the first checkout among `entries` no one else takes first to `dest` (with its index copy).

    Returns the name it had, or None when every one was taken.
    """
    for entry in entries:
        if entry.name.endswith(RUNNER_SUFFIXES):
            continue
        try:
            os.replace(entry, dest)
        except OSError:
            continue  # another worker took it first
        _move_runner_files(entry, dest)
        return entry.name
    return None


def park(checkout: Path, pool: Path) -> bool:
    """Keep a finished checkout of a large repo for re-use (at most POOL_SIZE); return whether it was kept."""
    index = git.runner_git_dir(checkout) / "index"
    if not index.is_file() or index.stat().st_size < PARK_MIN_INDEX_BYTES:
        return False  # a small repo: a fresh clone (two git commands) is as fast as a refresh (three)
    pool.mkdir(parents=True, exist_ok=True)
    if sum(1 for entry in pool.iterdir() if not entry.name.endswith(RUNNER_SUFFIXES)) >= POOL_SIZE:
        return False
    target = pool / f"{checkout.name}.{os.getpid()}.{time.monotonic_ns()}"
    os.replace(checkout, target)
    _move_runner_files(checkout, target)
    return True


RUNNER_SUFFIXES = (".index", ".git", ".tmp")  # the runner's files beside a checkout, half-made ones


def _move_runner_files(old: Path, new: Path) -> None:
    """Move the runner's git dir and index copy along with a checkout (or drop stale ones at `new`)."""
    for source, target in zip(checkouts.runner_files(old), checkouts.runner_files(new), strict=True):
        checkouts.remove_path(target)  # a stale one (no index copy: the refresh verifies every file)
        with contextlib.suppress(FileNotFoundError):
            os.replace(source, target)
