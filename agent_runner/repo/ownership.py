"""Who owns a checkout: a live attempt holds a lock beside it; a checkout whose lock nobody holds is swept.

A machine the queue does not see (an SSH machine's workdir) is swept by its worker at the start of each
attempt (`sweep_unowned`): an attempt holds a lock on `<checkout>.lock` while it runs (`owning`), so a
checkout whose lock nobody holds belongs to a dead attempt and goes, unless `kept_marker` marks it kept
for people (`keep_checkouts`) or it has no lock file at all (made by an older runner: left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_runner.repo.checkouts import remove_checkout
from agent_runner.repo.git import runner_git_dir


def lock_path(checkout: Path) -> Path:
    """Return the lock file a live attempt holds beside its checkout."""
    return checkout.with_name(checkout.name + ".lock")


def kept_marker(checkout: Path) -> Path:
    """Return the file that marks a checkout as kept for people (never swept by a worker): in the runner's
    git dir beside it, else `<checkout>.kept`."""
    git_dir = runner_git_dir(checkout)
    return git_dir / "kept-for-people" if git_dir.is_dir() else checkout.with_name(checkout.name + ".kept")


@contextmanager
def owning(checkout: Path) -> Iterator[None]:
    """Hold the lock of `checkout` while the attempt runs (released by the kernel if its process dies)."""
    checkout.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(checkout), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        with contextlib.suppress(OSError):  # held elsewhere (a duplicate attempt): never sweepable then
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        lock_path(checkout).unlink(missing_ok=True)  # the attempt tidied its checkout (or marked it kept)
        os.close(fd)


def sweep_unowned(workdir: Path) -> list[Path]:
    """Remove the checkouts under `workdir` whose attempt died (a lock none holds, not kept); return them."""
    folder = workdir / "checkouts"
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if "." in entry.name or kept_marker(entry).exists() or not lock_path(entry).exists():
            continue
        if _remove_if_unowned(entry):
            removed.append(entry)
    return removed


def _remove_if_unowned(checkout: Path) -> bool:
    try:
        fd = os.open(lock_path(checkout), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a live attempt holds it
        os.close(fd)
        return False
    try:
        if kept_marker(checkout).exists() or not lock_path(checkout).exists():
            return False  # its attempt ended (kept it, or tidied up) while this looked
        remove_dead(checkout)
    finally:
        os.close(fd)
    return True


def remove_dead(checkout: Path) -> None:
    """Delete the checkout of an attempt that no longer runs, with its lock file."""
    remove_checkout(checkout)
    lock_path(checkout).unlink(missing_ok=True)
