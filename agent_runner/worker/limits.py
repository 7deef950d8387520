"""The agent's hard limits, checked before each model call: steps, tokens, cost (with the next call's worst
case) and minutes. Each one reached ends the run with its own ExitStatus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent_runner.core.result import ExitStatus
from agent_runner.core.task import Limits


@dataclass(frozen=True)
class AttemptDeadline:
    """When the whole attempt's wall-clock limit runs out: `ends_at` (time.time()), `minutes` long."""

    ends_at: float
    minutes: float


@dataclass(frozen=True)
class LimitHit:
    """A limit the run reached: how it ends and why."""

    status: ExitStatus
    error: str


def limit_hit(
    limits: Limits,
    *,
    n_calls: int,
    tokens: int,
    cost: float | None,
    elapsed_s: float,
    next_call_bound: Callable[[], float | None],
) -> LimitHit | None:
    """Return the first limit the run has reached, or None while the next model call may go ahead."""
    if limits.steps is not None and n_calls >= limits.steps:
        return LimitHit(ExitStatus.STEP_LIMIT, f"step limit reached: {n_calls} model calls")
    if limits.tokens is not None and tokens >= limits.tokens:
        return LimitHit(ExitStatus.TOKEN_LIMIT, f"token limit reached: {tokens} tokens")
    if limits.cost_usd is not None and cost is not None:
        error = cost_problem(cost, limits.cost_usd, next_call_bound())
        if error is not None:
            return LimitHit(ExitStatus.COST_LIMIT, error)
    if limits.minutes is not None and elapsed_s >= limits.minutes * 60:
        return LimitHit(ExitStatus.TIME_LIMIT, f"time limit reached: {elapsed_s / 60:.1f} minutes")
    return None


def time_cut_off(limits: Limits, elapsed_s: float) -> LimitHit:
    """Return the time limit a model call cut off at the agent's `minutes` reached."""
    return LimitHit(
        ExitStatus.TIME_LIMIT,
        f"time limit reached: {elapsed_s / 60:.1f} minutes (limits.minutes = {limits.minutes:g}); "
        "the model call in flight was cut off at the limit",
    )


def cost_problem(spent: float, limit: float, bound: float | None) -> str | None:
    """Return why the next call may not go: the limit is spent, or its worst case `bound` does not fit."""
    left = limit - spent
    what = f"the attempt's ${limit:.4f} cost limit (limits.cost_usd)"
    if left <= 1e-9:
        return f"cost limit reached: ${spent:.4f} spent of {what}"
    if bound is not None and bound > left + 1e-9:
        return (
            f"cost limit: the next model call could cost up to ${bound:.4f}, more than the "
            f"${left:.4f} left of {what} (${spent:.4f} spent)"
        )
    return None
