"""The wall-clock bound of one whole attempt: checkout, setup, baselines, agent, gates and commit.

The agent's `minutes` limit times its own loop only; `attempt_minutes` bounds everything. Unset, it is
derived from the kind's limits: twice the agent's minutes (as long again for checkout, setup, baselines and
gate rounds) plus a fixed margin. The worker enforces it (`alarm`: the attempt ends as a task failure
naming the limit); the executor kills a worker still running `BACKSTOP_GRACE_S` after it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import Limits
from agent_runner.worker.request import request_config

ATTEMPT_LIMIT = "attempt_minutes"  # the name `show` and results give the limit
MARGIN_MINUTES = 15.0  # beyond twice the agent's minutes: checkout, setup and a slow commit
FALLBACK_MINUTES = 60.0  # when even the agent's minutes are unset
BACKSTOP_GRACE_S = 60.0  # the worker's own deadline plus this: the executor kills it


class AttemptTimeout(BaseException):
    """The attempt passed its wall-clock limit (a BaseException: no `except Exception` in the job eats it)."""

    def __init__(self, minutes: float) -> None:
        super().__init__(f"attempt_minutes = {minutes:g}")
        self.minutes = minutes


def attempt_minutes(limits: Limits) -> float:
    """Return the attempt's wall-clock limit in minutes: set, or derived from the agent's `minutes`."""
    if limits.attempt_minutes is not None:
        return limits.attempt_minutes
    if limits.minutes is None:
        return FALLBACK_MINUTES
    return 2 * limits.minutes + MARGIN_MINUTES


def request_minutes(request: WorkRequest) -> float:
    """Return the wall-clock limit of the attempt `request` asks for (its config and task limits)."""
    config = request_config(request)
    return attempt_minutes(config.limits_for(request.task.kind, request.task.limits))


def timeout_reason(minutes: float) -> str:
    """Return the failure reason of an attempt its wall-clock limit ended."""
    return (
        f"the attempt ran past its wall-clock limit (attempt_minutes = {minutes:g}, covering checkout, "
        "setup, baselines, agent, gates and commit) and was stopped; raise `attempt_minutes` under the "
        "task's `limits` (or [tool.agent-runner.limits.<kind>]) if it needs longer"
    )


def backstop_reason(minutes: float, grace_s: float) -> str:
    """Return the failure reason of an attempt whose worker the executor killed past the limit."""
    return (
        f"the worker was still running {grace_s:g} s past the attempt's wall-clock limit "
        f"(attempt_minutes = {minutes:g}) and was killed; raise `attempt_minutes` if it needs longer"
    )


def overdue_result(request: WorkRequest, minutes: float, grace_s: float) -> TaskResult:
    """Return the failed result of an attempt whose worker the executor killed past its limit and grace."""
    return TaskResult(
        task_id=request.task.id, attempt=request.attempt, outcome=Outcome.REJECTED, limit=ATTEMPT_LIMIT,
        reason=backstop_reason(minutes, grace_s), machine=request.worker, model=request.model_spec or None,
    )  # fmt: skip


def backstop_s(request: WorkRequest, grace_s: float = BACKSTOP_GRACE_S) -> float:
    """Return how long an executor lets the worker of `request` run before killing it (limit plus grace)."""
    return request_minutes(request) * 60 + grace_s


@contextmanager
def alarm(minutes: float) -> Iterator[None]:
    """Raise AttemptTimeout in this (main) thread once `minutes` have passed; off the main thread, do
    nothing (signals reach only it: the executor's backstop still bounds the attempt).

    An interval timer set before (pytest-timeout's, say) still rings, at its time, and runs on afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seconds, started = minutes * 60, time.monotonic()

    def ring(signum: int, frame: FrameType | None) -> None:
        if time.monotonic() - started >= seconds - 0.01:
            raise AttemptTimeout(minutes)
        signal.setitimer(signal.ITIMER_REAL, max(seconds - (time.monotonic() - started), 0.001))
        if callable(previous):  # the earlier timer's turn
            previous(signum, frame)

    previous = signal.signal(signal.SIGALRM, ring)
    old_delay, old_interval = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, old_delay) if old_delay else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:
            left = old_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), old_interval)
