"""The disk of one attempt: the machine's free space before it starts, the checkout's size while it runs,
and whose fault a full disk is.

- Below `min_free_mb` free before an attempt starts, the machine is full: the attempt is released (no
  attempt spent) and the machine takes no more work this run.
- A checkout grown past the task's `max_disk_mb` fails the attempt (the task's fault), checked before each
  gate round and before the commit.
- "No space left on device" mid-attempt is the task's fault when its checkout grew by at least
  `FILLED_SHARE` of what was free when it started (it filled the disk), else the machine's.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20
FILLED_SHARE = 0.5
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


@dataclass(frozen=True)
class Growth:
    """How much a checkout holds now and how much of it the attempt wrote (MB)."""

    size_mb: float
    grown_mb: float


def free_mb(path: Path) -> float:
    """Return the space free to this user on `path`'s file system, in MB."""
    return shutil.disk_usage(path).free / MB


def low_space(path: Path, floor_mb: float) -> str | None:
    """Return why the machine cannot start an attempt (under `floor_mb` free at `path`), or None."""
    free = free_mb(path)
    if free >= floor_mb:
        return None
    return (
        f"the machine has {free:.0f} MB free under {path}, below min_free_mb = {floor_mb:g}: it takes no "
        "more attempts this run and the task stays queued (no attempt spent); free some space (or lower "
        "min_free_mb) and run again"
    )


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the user's quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in NO_SPACE_TEXTS)


def tree_mb(path: Path) -> float:
    """Return the disk space the files under `path` take (blocks, so sparse files count as written), MB."""
    total = 0
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                continue
    return total / MB


def base_mb(checkout: Path, commit: str) -> float:
    """Return the size of `commit`'s files (what a fresh checkout holds besides .git), in MB."""
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "-l", "-z", commit], cwd=checkout, capture_output=True, check=False
    ).stdout
    sizes = (entry.split(b"\t", 1)[0].split()[-1] for entry in listing.split(b"\0") if entry)
    return sum(int(size) for size in sizes if size.isdigit()) / MB


def growth(checkout: Path, base_commit: str) -> Growth:
    """Return the checkout's size now and how far it grew past its base commit's files."""
    size = tree_mb(checkout)
    return Growth(size_mb=size, grown_mb=max(0.0, size - base_mb(checkout, base_commit)))


def filled_reason(grew: Growth, free_before_mb: float) -> str:
    """Return the failure reason of an attempt that filled the disk."""
    return (
        f"the attempt filled the disk: its checkout grew by {grew.grown_mb:.0f} MB to {grew.size_mb:.0f} MB "
        f"(the machine had {free_before_mb:.0f} MB free when it started) and a write failed with 'No space "
        "left on device'; make the task write less, or bound it with `max_disk_mb` under its `limits`"
    )


def machine_full_reason(where: Path, grew: Growth | None, error: BaseException) -> str:
    """Return why an attempt that met a full disk it did not fill was released."""
    wrote = f"its checkout grew only {grew.grown_mb:.0f} MB; " if grew else ""
    return (
        f"the machine's disk is full under {where} ({error}); {wrote}it takes no more attempts this run and "
        "the task stays queued (no attempt spent); free some space and run again"
    )


def over_limit_reason(grew: Growth, limit_mb: float) -> str:
    """Return the failure reason of an attempt whose checkout passed `max_disk_mb`."""
    return (
        f"the checkout grew to {grew.size_mb:.0f} MB, over the task's limit max_disk_mb = {limit_mb:g}; "
        "make the task write less, or raise `max_disk_mb` under its `limits`"
    )
