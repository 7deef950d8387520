"""An attempt's disk: refused on a machine short of room, failed when its checkout grows past its limit, and
a full disk blamed on the task when its checkout filled it, else on the machine."""

from __future__ import annotations

from agent_runner.core.result import Outcome
from agent_runner.repo import diskspace, git
from agent_runner.worker.attempt import Attempt
from agent_runner.worker.failure import JobFailed


def refuse_low_space(attempt: Attempt) -> None:
    """Release the attempt before it starts when the state folder's disk has too little room."""
    if problem := diskspace.low_space(attempt.workdir, attempt.config.min_free_mb):
        raise JobFailed(Outcome.INFRA, f"{attempt.request.worker}: {problem}", machine_problem=problem)


def no_space(
    exc: BaseException, attempt: Attempt, checkout: git.Checkout | None, *, free_mb: float
) -> JobFailed:
    """Return how an attempt that met a full disk ends: failed if it filled it, else released."""
    grew = diskspace.growth(checkout.path, checkout.base_commit) if checkout is not None else None
    if grew is not None and grew.grown_mb >= diskspace.FILLED_SHARE * free_mb:
        return JobFailed(Outcome.REJECTED, diskspace.filled_reason(grew, free_mb), limit="disk")
    problem = diskspace.machine_full_reason(attempt.workdir, grew, exc)
    return JobFailed(Outcome.INFRA, f"{attempt.request.worker}: {problem}", machine_problem=problem)


def check_size(limit: float | None, checkout: git.Checkout | None) -> None:
    """Fail the attempt when its checkout grew past the task's `max_disk_mb`."""
    if limit is None or checkout is None:
        return
    grew = diskspace.growth(checkout.path, checkout.base_commit)
    if grew.size_mb > limit:
        raise JobFailed(Outcome.REJECTED, diskspace.over_limit_reason(grew, limit), limit="max_disk_mb")
