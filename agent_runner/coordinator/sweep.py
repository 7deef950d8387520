"""The sweep at a run's start: checkouts left by attempts that no longer run, found from the queue file.

An attempt's checkout is `<state_dir>/checkouts/<task>-<attempt>` (layout.AttemptPaths). One that was
released (an infrastructure failure), interrupted (a stopped coordinator, a killed worker), cancelled or
re-granted stays there when its process could not tidy up. The sweep removes those, and keeps:

- the checkout of an attempt that is live in the queue (running under a lease);
- a checkout a failed or finished result names (`checkout_path`): kept for people by `keep_checkouts`;
- anything the queue does not know (another task's, a later attempt number, a name it did not make).

A machine the queue does not see (an SSH machine's workdir) is swept by its worker instead, at the start of
each attempt (repo/ownership.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from agent_runner.queue.state import EventType, TaskState
from agent_runner.queue.store import Queue
from agent_runner.repo.ownership import remove_dead

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
        remove_dead(path)
    return stale
