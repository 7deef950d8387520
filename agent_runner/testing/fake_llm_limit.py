"""The fake LLM server's rate limit: answer 429 whenever more than `n` requests would be in flight.

    limit = InFlightLimit(2, retry_after_s=0.5)
    with FakeLLMServer(default=..., in_flight_limit=limit) as server:
        ...
    print(limit.stats())  # mean and max requests in flight, 429s sent

A refused request gets 429 with `retry-after` / `retry-after-ms` and both providers' remaining-quota
headers (remaining 0, reset when the retry-after ends); it is answered at once and never counts as in
flight. Served requests count from their arrival to their answer (a reply's `delay_s` included).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent_runner.testing.fake_llm_wire import Reply, error


@dataclass(frozen=True)
class InFlightStats:
    """What the server measured: requests in flight (time-weighted mean, max) and the 429s it sent."""

    mean_in_flight: float
    max_in_flight: int
    n_served: int
    n_limited: int


class InFlightLimit:
    """Counts the requests in flight; refuses one that would make them more than `n`."""

    def __init__(self, n: int, *, retry_after_s: float = 1.0) -> None:
        self.n, self.retry_after_s = n, retry_after_s
        self._lock = threading.Lock()
        self._in_flight = 0
        self._max = 0
        self._n_served = 0
        self._n_limited = 0
        self._area = 0.0  # in-flight x seconds, from the first request to the last change
        self._first: float | None = None
        self._changed = 0.0

    def enter(self) -> Reply | None:
        """Count a request in, or return the 429 to answer it with (then it is not in flight)."""
        with self._lock:
            self._advance()
            if self._in_flight >= self.n:
                self._n_limited += 1
                return self._refusal()
            self._in_flight += 1
            self._n_served += 1
            self._max = max(self._max, self._in_flight)
            return None

    def leave(self) -> None:
        """Count a served request out (its answer is sent)."""
        with self._lock:
            self._advance()
            self._in_flight -= 1

    def stats(self) -> InFlightStats:
        """Return the figures so far."""
        with self._lock:
            span = self._changed - self._first if self._first is not None else 0.0
            mean = self._area / span if span > 0 else 0.0
            return InFlightStats(mean, self._max, self._n_served, self._n_limited)

    def _advance(self) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
        else:
            self._area += self._in_flight * (now - self._changed)
        self._changed = now

    def _refusal(self) -> Reply:
        wait = self.retry_after_s
        reply = error(429, f"fake rate limit: more than {self.n} requests in flight")
        reset = datetime.now(UTC) + timedelta(seconds=wait)
        reply.headers.update({
            "retry-after": str(max(1, math.ceil(wait))),
            "retry-after-ms": str(round(wait * 1000)),
            "anthropic-ratelimit-requests-limit": str(self.n),
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset.isoformat().replace("+00:00", "Z"),
            "x-ratelimit-limit-requests": str(self.n),
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{round(wait * 1000)}ms",
        })  # fmt: skip
        return reply
