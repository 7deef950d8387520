"""Rate-limit-aware dispatch: per provider and key, a limit on attempts in flight that adapts (AIMD).

Workers report the rate-limit answers their model calls get (models/ratelimit.py); the executor hands
each checked `RateSignal` to `RateLimits.observe` with the attempt that sent it. For that attempt's pool
(its provider and the fingerprint of the key the coordinator forwards):

- a rate-limit answer (429, 529) lowers the limit to `decrease` x the attempts in flight (rounded, and by
  one at least; at most once per `lower_every_s`: a burst counts once) and pauses all new dispatch to the
  pool for its `retry-after`;
- a success whose quota headers say nothing is left pauses dispatch until the quota's reset; a low quota
  holds the limit where it is;
- `raise_every_s` without a rate-limit answer, while the limit is in use, allows one attempt more.

Tasks of other pools, of models with no provider limits (scripted) and model-free tasks are never held.
The scheduler asks `admits` for each task it could claim, and turns `transitions` into `throttled` and
`unthrottled` events. All methods are thread-safe; the clock is injectable for tests.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent_runner.config.ratelimit import RateLimitConfig
from agent_runner.models.keys import KEY_ENVS
from agent_runner.models.ratelimit import AttemptKey, RateSignal, fingerprint, seconds_text

THROTTLE_EVENTS = ("throttled", "unthrottled")  # the kinds of event a pool's throttling makes
# the worker's reason when a model call failed on its rate (worker/failure.py's template around the model
# adapter's message): anchored, so agent text inside another failure's reason (a file name in a git or file
# system error) never re-queues its task unspent
RATE_LIMITED = re.compile(r"model unavailable: \S+: HTTP (429|529)\b")
MIN_REQUEUE_WAIT_S = 1.0  # a re-queued rate-limited task waits at least this long
QUIET_S = 2.0  # throttling ends once its pause is over and no answer throttled it for this long


def pool_of(spec: str | None, secrets: Mapping[str, str]) -> str | None:
    """Return the pool of a model spec, `provider` or `provider key <fingerprint>`; None: not limited."""
    provider = (spec or "").partition(":")[0].strip()
    if provider not in KEY_ENVS:
        return None
    key = fingerprint(secrets.get(KEY_ENVS[provider]))
    return f"{provider} key {key}" if key else provider


@dataclass
class Pool:
    """The adaptive limit of one provider and key, and what a person reads about it."""

    name: str
    limit: int | None  # None: no limit yet (as many as there are workers)
    paused_until: float = 0.0
    lowered_at: float = -math.inf
    calm_since: float = 0.0  # the last rate-limit answer, low quota or raise
    signalled_at: float = -math.inf  # the last answer that throttled it
    reason: str = ""  # the last answer that throttled it
    is_throttled: bool = False  # a `throttled` event was emitted and no `unthrottled` since
    n_throttled: int = 0
    paused_s: float = 0.0  # dispatch paused in all, in seconds
    n_in_flight: int = 0


@dataclass(frozen=True)
class Transition:
    """A pool's throttling started or ended: what the scheduler reports."""

    kind: str  # "throttled" or "unthrottled"
    pool: str
    message: str


@dataclass
class RateLimits:
    """The pools' limits; fed by workers' reports, asked by the scheduler before each claim."""

    config: RateLimitConfig = field(default_factory=RateLimitConfig)
    clock: Callable[[], float] = time.monotonic
    pools: dict[str, Pool] = field(default_factory=dict)
    _attempts: dict[AttemptKey, str] = field(default_factory=dict)  # running attempt -> its pool
    _limited: dict[AttemptKey, str] = field(default_factory=dict)  # attempt -> pool, once it got a 429
    _requeued: dict[str, int] = field(default_factory=dict)  # task id -> rate-limited re-queues this run
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the scheduler's side ----------------------------------------------------------------------
    def running(self, attempts: Mapping[AttemptKey, str | None]) -> None:
        """Tell which attempts are in flight now and the pool of each (None: not limited)."""
        with self._lock:
            self._attempts = {key: pool for key, pool in attempts.items() if pool is not None}
            counts: dict[str, int] = {}
            for name in self._attempts.values():
                counts[name] = counts.get(name, 0) + 1
            for name, pool in self.pools.items():
                pool.n_in_flight = counts.get(name, 0)
            for name, n in counts.items():
                self._pool(name).n_in_flight = n

    def admits(self, pool_name: str | None, n_in_flight: int) -> bool:
        """Return whether one more attempt may start on `pool_name` with `n_in_flight` running there."""
        if pool_name is None or not self.config.enabled:
            return True
        with self._lock:
            pool = self._pool(pool_name)
            now = self.clock()
            if now < pool.paused_until:
                return False
            self._maybe_raise(pool, now, n_in_flight)
            cap = _min(pool.limit, self.config.maximum)
            return cap is None or n_in_flight < cap

    def transitions(self) -> list[Transition]:
        """Return the pools whose throttling ended since the last call: their pause is over, and no answer
        throttled them for QUIET_S (a burst of answers is one throttling, not many)."""
        ended = []
        with self._lock:
            now = self.clock()
            for pool in self.pools.values():
                is_quiet = now - pool.signalled_at >= QUIET_S
                if pool.is_throttled and now >= pool.paused_until and is_quiet:
                    pool.is_throttled = False
                    ended.append(Transition("unthrottled", pool.name, self._resumed(pool)))
        return ended

    def requeue_wait(self, key: AttemptKey, reason: str) -> float | None:
        """For an attempt whose model call failed on a rate limit: the seconds its task waits (no attempt
        spent); None for any other failure, and once the task was re-queued so `max_requeues` times."""
        if not RATE_LIMITED.match(reason):
            return None
        with self._lock:
            n = self._requeued[key[0]] = self._requeued.get(key[0], 0) + 1
            if n > self.config.max_requeues:
                return None
            pool = self.pools.get(self._limited.pop(key, "") or self._attempts.get(key, ""))
            left = pool.paused_until - self.clock() if pool is not None else 0.0
        return max(left, MIN_REQUEUE_WAIT_S)

    def summary(self) -> dict[str, str]:
        """Return, per pool that was throttled in this run, one line: how often, how long, why last."""
        with self._lock:
            return {
                pool.name: (
                    f"throttled {pool.n_throttled} time{'s' if pool.n_throttled != 1 else ''}, dispatch "
                    f"paused {pool.paused_s:.0f} s in all; last: {pool.reason}; limit now "
                    f"{_limit_text(pool.limit)}"
                )
                for pool in self.pools.values()
                if pool.n_throttled
            }

    # -- the workers' side (executor threads) -------------------------------------------------------
    def observe(self, key: AttemptKey, signal: RateSignal, emit: Callable[[Transition], None]) -> None:
        """Take one report of attempt `key`; call `emit` when it starts a pool's throttling."""
        if not self.config.enabled:
            return
        with self._lock:
            name = self._attempts.get(key)
            if name is None or not name.startswith(signal.provider):
                return  # an attempt that is no longer running, or a report about another provider
            pool, now = self._pool(name), self.clock()
            started = self._apply(pool, key, signal, now)
            message = self._throttled(pool, signal, now) if started else ""
        if started:
            emit(Transition("throttled", name, message))

    def _apply(self, pool: Pool, key: AttemptKey, signal: RateSignal, now: float) -> bool:
        """Update the pool for one signal; return whether it starts a throttling (none was on)."""
        pool.calm_since = now
        if signal.is_limited:
            wait = min(signal.retry_after_s, self.config.max_wait_s)
            self._limited[key] = pool.name
            self._pause(pool, now + wait)
            if now - pool.lowered_at >= self.config.lower_every_s:
                base = _min(pool.limit, pool.n_in_flight) or pool.n_in_flight or 1
                lowered = min(base - 1, round(base * self.config.decrease))
                pool.limit = max(self.config.minimum, lowered)
                pool.lowered_at = now
        elif signal.is_exhausted:
            self._pause(pool, now + min(signal.reset_s or MIN_REQUEUE_WAIT_S, self.config.max_wait_s))
        else:
            return False  # a low quota: the limit holds
        pool.reason, pool.signalled_at = signal.reason(), now
        if pool.is_throttled:
            return False
        pool.is_throttled = True
        pool.n_throttled += 1
        return True

    def _pause(self, pool: Pool, until: float) -> None:
        now = self.clock()
        if until > pool.paused_until:
            pool.paused_s += until - max(pool.paused_until, now)
            pool.paused_until = until

    def _maybe_raise(self, pool: Pool, now: float, n_in_flight: int) -> None:
        """One attempt more after `raise_every_s` of calm, while the limit is in use."""
        if pool.limit is None or n_in_flight < pool.limit:
            return
        if now - pool.calm_since >= self.config.raise_every_s:
            pool.limit += 1
            pool.calm_since = now

    def _pool(self, name: str) -> Pool:
        if name not in self.pools:
            self.pools[name] = Pool(name, limit=self.config.start, calm_since=self.clock())
        return self.pools[name]

    def _throttled(self, pool: Pool, signal: RateSignal, now: float) -> str:
        wait = max(pool.paused_until - now, 0.0)
        pause = f"no new attempt for {seconds_text(wait)}" if wait > 0 else "dispatch goes on"
        return (
            f"{pool.name}: {signal.reason()}; {pause}, at most {_limit_text(pool.limit)} in flight "
            f"({pool.n_in_flight} now)"
        )

    def _resumed(self, pool: Pool) -> str:
        every = self.config.raise_every_s
        return (
            f"{pool.name}: dispatch resumes, at most {_limit_text(pool.limit)} in flight "
            f"(one more every {every:.0f} s without a rate-limit answer)"
        )


def _min(a: int | None, b: int | None) -> int | None:
    known = [n for n in (a, b) if n is not None]
    return min(known) if known else None


def _limit_text(limit: int | None) -> str:
    return "all workers" if limit is None else str(limit)
