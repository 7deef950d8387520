"""What becomes of an ended attempt's checkout: kept for people, parked for re-use, trashed or removed."""

from __future__ import annotations

from pathlib import Path

from agent_runner.repo import checkouts, ownership, pools, workspace
from agent_runner.worker.attempt import Attempt


def put_away(
    checkout: Path, attempt: Attempt, *, is_ok: bool, filled_disk: bool, trash: list[Path] | None
) -> bool:
    """Keep, park, trash or remove an ended attempt's checkout; return whether it stays where it is."""
    keep = attempt.config.keep_checkouts
    if filled_disk:  # it filled the disk: free it now, before the result is written
        checkouts.remove_checkout(checkout)
        return False
    if keep == "always" or (keep == "failed" and not is_ok):  # kept for people, never re-used
        checkouts.trusted_index(checkout).unlink(missing_ok=True)
        ownership.kept_marker(checkout).touch()
        return True
    pool = pools.pool_dir(attempt.paths, attempt.request.repo)
    if is_ok and pools.park(checkout, pool):
        return False  # the next attempt on this machine refreshes it instead of cloning
    if trash is None:
        checkouts.remove_checkout(checkout)
    else:
        trash.extend(workspace.move_to_trash(checkout, attempt.workdir))
    return False
