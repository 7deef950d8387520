"""A scratch checkout of the base commit: sweeps measure there, never in the user's work tree."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_runner.repo import git
from agent_runner.repo.checkouts import make_checkout, remove_checkout
from agent_runner.repo.git import Checkout


@contextmanager
def scratch_checkout(root: Path, *, base: str | None = None) -> Iterator[Checkout]:
    """Yield a throwaway checkout of `base` (default: the repo's HEAD branch) of the repo at `root`.

    It is a clone of the runner's cache (hard-linked objects) under the runner's home, detached at the base
    commit: what is committed is measured, not what the work tree holds; it is deleted on the way out.
    """
    commit = git.resolve_base(root, base)
    cache = git.ensure_cache(str(root), need=commit)
    parent = git.home_dir() / "sweeps"
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="scratch-", dir=parent))
    dest = folder / "checkout"
    try:
        yield make_checkout(cache, dest, branch=None, base_commit=commit)
    finally:
        remove_checkout(dest)
        shutil.rmtree(folder, ignore_errors=True)
