"""The deadline of a model call: no HTTP try of it, first or retried, runs past the time the agent has left.

The agent sets `model.set_deadline(at)` (on time.monotonic()'s clock) from its `minutes` limit and the
attempt's `attempt_minutes`. Each adapter hooks `CallDeadline` into its SDK's retry loop: every try gets
`min(models.timeout_s, time left)` as its timeout, no try starts once the time is up, and a retry the server
asks to wait for past the deadline is not waited for. Then `DeadlineError` ends the call; the agent reports
the limit that ran out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from agent_runner.core.errors import ModelUnavailableError

MIN_TIMEOUT_S = 0.05  # a try with less time left than this is not started


class DeadlineError(ModelUnavailableError):
    """The model call would run past the deadline the agent set: the time is up."""


@runtime_checkable
class DeadlineModel(Protocol):
    """A model whose calls can be cut off at a deadline."""

    def set_deadline(self, at: float | None) -> None:
        """Cut every later call off at `at` (time.monotonic()); None: only models.timeout_s bounds it."""
        ...


class CallDeadline:
    """A deadline on time.monotonic()'s clock (None: none) that an adapter's per-try hook reads."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.at: float | None = None

    def left(self) -> float | None:
        """Return the seconds left (None: no deadline)."""
        return None if self.at is None else self.at - time.monotonic()

    def timeout(self, configured: float) -> float:
        """Return the timeout of the next try: `configured`, cut to the time left; raise once it is up."""
        left = self.left()
        if left is None:
            return configured
        if left < MIN_TIMEOUT_S:
            raise DeadlineError(f"{self.spec}: the model call was cut off: the agent's time is up")
        return min(configured, left)

    def check_wait(self, status: int, headers: Mapping[str, str]) -> None:
        """Raise when a retryable answer asks to wait past the deadline (the retry could never be sent)."""
        left = self.left()
        if left is None or not (status in (408, 409, 429) or status >= 500):
            return
        wait = retry_after(headers)
        if wait > left:
            raise DeadlineError(
                f"{self.spec}: HTTP {status} asked to wait {wait:.0f} s before a retry, "
                f"past the {max(left, 0):.0f} s the agent has left"
            )


def retry_after(headers: Mapping[str, str]) -> float:
    """Return the seconds a response asks to wait (0 when absent or not a number, e.g. an HTTP date)."""
    try:
        return float(headers.get("retry-after-ms") or 0) / 1000 or float(headers.get("retry-after") or 0)
    except ValueError:
        return 0.0
