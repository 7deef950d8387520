"""The sweep at a run's start: checkouts left by attempts that no longer run, found from the queue file.

An attempt's checkout is `<state_dir>/checkouts/<task>-<attempt>` (workspace.AttemptPaths). One that was
released (an infrastructure failure), interrupted (a stopped coordinator, a killed worker), cancelled or
re-granted stays there when its process could not tidy up. The sweep removes those, and keeps:

- the checkout of an attempt that is live in the queue (running under a lease);
- a checkout a failed or finished result names (`checkout_path`): kept for people by `keep_checkouts`;
- anything the queue does not know (another task's, a later attempt number, a name it did not make).

A machine the queue does not see (an SSH machine's workdir) is swept by its worker instead, at the start of
each attempt (`sweep_unowned`): an attempt holds a lock on `<checkout>.lock` while it runs (`owning`), so a
checkout whose lock nobody holds belongs to a dead attempt and goes, unless `kept_marker` marks it kept
for people (`keep_checkouts`) or it has no lock file at all (made by an older runner: left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_runner.checkouts import remove_checkout
from agent_runner.git import runner_git_dir
from agent_runner.queue import Queue
from agent_runner.queue_state import EventType, TaskState

KEEPING_EVENTS = (EventType.FAILED, EventType.FINISHED)  # their results name checkouts kept on purpose


def kept_checkouts(events: Iterable[dict[str, Any]]) -> set[Path]:
    """Return the checkouts that failed or finished results keep for people (their `checkout_path`)."""
    kept = set()
    for event in events:
        result = event.get("result")
        if event.get("type") in KEEPING_EVENTS and isinstance(result, dict) and result.get("checkout_path"):
            kept.add(Path(str(result["checkout_path"])).resolve())
    return kept


def stale_checkouts(workdir: Path, states: Mapping[str, TaskState], *, kept: Collection[Path]) -> list[Path]:
    """Return the checkouts under `workdir` of attempts that are not live and not kept (sorted)."""
    folder = workdir / "checkouts"
    if not folder.is_dir():
        return []
    stale = []
    for entry in sorted(folder.iterdir()):
        task_id, _, number = entry.name.rpartition("-")
        state = states.get(task_id)
        if "." in entry.name or not number.isdigit() or state is None or not entry.is_dir():
            continue  # the runner's files beside a checkout (.git, .index) go with it
        attempt = int(number)
        is_live = state.is_live and state.attempt == attempt
        if not is_live and attempt <= state.attempt and entry.resolve() not in kept:
            stale.append(entry)
    return stale


def sweep_checkouts(workdir: Path, queue: Queue) -> list[Path]:
    """Remove the stale checkouts of `queue`'s attempts under `workdir`; return those removed.

    Call it holding the queue's coordinator lock, after releasing orphaned attempts: then no other run can
    start an attempt whose checkout this would take away.
    """
    stale = stale_checkouts(workdir, queue.refresh(), kept=kept_checkouts(queue.events()))
    for path in stale:
        remove_checkout(path)
    return stale


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
        remove_checkout(checkout)
    finally:
        os.close(fd)
    return True
