"""The adaptive limit per provider and key, driven by reports and an injected clock (no sleeps)."""

from __future__ import annotations

import pytest

from agent_runner.config.ratelimit import RateLimitConfig
from agent_runner.coordinator.ratelimit import QUIET_S, RateLimits, Transition, pool_of
from agent_runner.models.ratelimit import RateSignal

POOL = "anthropic"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, **settings: float) -> RateLimits:
    config = RateLimitConfig(lower_every_s=5, raise_every_s=10, decrease=0.5, **settings)  # type: ignore[arg-type]
    return RateLimits(config, clock=clock)


def run(rl: RateLimits, n: int, pool: str | None = POOL) -> list[tuple[str, int]]:
    """Tell the limits that `n` attempts run on `pool`; return their keys."""
    keys = [(f"t{i}", 1) for i in range(n)]
    rl.running(dict.fromkeys(keys, pool))
    return keys


def limited(retry_after_s: float = 0.0, status: int = 429) -> RateSignal:
    return RateSignal(provider="anthropic", status=status, retry_after_s=retry_after_s)


def first_free(rl: RateLimits, pool: str = POOL, upto: int = 64) -> int:
    """Return the in-flight count at which `admits` first says no (upto when it never does)."""
    return next((n for n in range(upto) if not rl.admits(pool, n)), upto)


def test_a_rate_limit_answer_halves_the_attempts_in_flight_once_per_burst() -> None:
    """8 in flight and a 429: at most 4; more 429s of the same burst leave it; a later one halves again."""
    clock, seen = Clock(), []
    rl = limits(clock)
    keys = run(rl, 8)
    assert first_free(rl) == 64  # no limit before the first answer
    for key in keys[:3]:
        rl.observe(key, limited(), seen.append)
    assert first_free(rl) == 4
    assert [t.kind for t in seen] == ["throttled"]  # one event for the burst
    assert "429" in seen[0].message and "at most 4 in flight (8 now)" in seen[0].message
    clock.now += 5
    rl.observe(keys[0], limited(), seen.append)
    assert first_free(rl) == 2


def test_retry_after_holds_every_new_attempt_until_it_passes() -> None:
    """A 429 asking for 12 s: nothing starts on that pool for 12 s, other pools go on; then one ends."""
    clock, seen = Clock(), []
    rl = limits(clock)
    keys = run(rl, 4)
    rl.observe(keys[0], limited(retry_after_s=12), seen.append)
    assert not rl.admits(POOL, 0)
    assert rl.admits("openai", 0) and rl.admits(None, 100)
    assert "no new attempt for 12 s" in seen[0].message
    clock.now += 11.9
    assert not rl.admits(POOL, 0) and rl.transitions() == []
    clock.now += 0.2
    assert rl.admits(POOL, 0)
    assert [t.kind for t in rl.transitions()] == ["unthrottled"]
    assert rl.transitions() == []  # said once


def test_a_burst_of_short_waits_is_one_throttling() -> None:
    """429s with short waits, 1 s apart: one `throttled`, one `unthrottled` QUIET_S after the last."""
    clock, seen = Clock(), []
    rl = limits(clock)
    keys = run(rl, 4)
    for _ in range(4):
        rl.observe(keys[0], limited(retry_after_s=0.5), seen.append)
        clock.now += 1
        assert rl.transitions() == []
    clock.now += QUIET_S - 1.1  # just before QUIET_S after the last one
    assert rl.transitions() == []
    clock.now += 0.1
    assert [t.kind for t in seen + rl.transitions()] == ["throttled", "unthrottled"]


def test_the_limit_rises_by_one_per_calm_period_while_in_use() -> None:
    """After a 429 set it to 2, each raise_every_s without one allows one more, only while it is used."""
    clock = Clock()
    rl = limits(clock)
    keys = run(rl, 4)
    rl.observe(keys[0], limited(), lambda t: None)
    assert first_free(rl) == 2
    clock.now += 10
    assert rl.admits(POOL, 1)  # 1 of 2 in flight: the limit is not in use, so it is not raised
    assert rl.admits(POOL, 2)  # in use at 2 after 10 s of calm: raised to 3
    assert not rl.admits(POOL, 3)
    clock.now += 9
    assert not rl.admits(POOL, 3)
    clock.now += 1
    assert rl.admits(POOL, 3) and not rl.admits(POOL, 4)


def test_a_later_rate_limit_stops_the_rise() -> None:
    """A 429 resets the calm: no raise until raise_every_s after it, and it lowers from the current limit."""
    clock = Clock()
    rl = limits(clock, start=6)
    keys = run(rl, 6)
    rl.observe(keys[0], limited(), lambda t: None)
    assert first_free(rl) == 3
    clock.now += 8
    rl.observe(keys[1], limited(), lambda t: None)  # 8 s later: lowers again (3 in flight at most)
    clock.now += 5
    assert not rl.admits(POOL, 3)  # 5 s after it: no raise yet


@pytest.mark.parametrize(("settings", "floor"), [({}, 1), ({"minimum": 3}, 3)])
def test_the_limit_never_drops_below_its_minimum(settings: dict[str, float], floor: int) -> None:
    """Repeated 429s bring it down to `minimum`, never to zero."""
    clock = Clock()
    rl = limits(clock, **settings)
    keys = run(rl, 8)
    for _ in range(6):
        rl.observe(keys[0], limited(), lambda t: None)
        clock.now += 5
    assert first_free(rl) == floor


def test_an_exhausted_quota_pauses_until_its_reset_without_lowering() -> None:
    """A success saying 0 requests left pauses dispatch until the reset; the limit stays."""
    clock, seen = Clock(), []
    rl = limits(clock, start=4)
    keys = run(rl, 4)
    quota = RateSignal(provider="anthropic", status=200, requests_remaining=0, requests_limit=50, reset_s=3)
    rl.observe(keys[0], quota, seen.append)
    assert not rl.admits(POOL, 0)
    assert "requests quota 0 of 50 left" in seen[0].message
    clock.now += 3
    assert rl.admits(POOL, 3) and not rl.admits(POOL, 4)


def test_reports_of_attempts_not_running_or_about_another_provider_are_ignored() -> None:
    """A report is a hint about its own attempt's pool: a stray or mismatched one changes nothing."""
    clock, seen = Clock(), []
    rl = limits(clock)
    keys = run(rl, 2)
    rl.observe(("ghost", 1), limited(retry_after_s=60), seen.append)
    rl.observe(keys[0], RateSignal(provider="openai", status=429, retry_after_s=60), seen.append)
    assert rl.admits(POOL, 0) and seen == []


def test_a_rate_limited_failure_waits_out_the_pause_and_others_do_not() -> None:
    """requeue_wait: the seconds left of the attempt's pool's pause for a 429 failure; None for others."""
    clock = Clock()
    rl = limits(clock)
    keys = run(rl, 2)
    rl.observe(keys[0], limited(retry_after_s=30), lambda t: None)
    clock.now += 10
    run(rl, 0)  # the attempt ended: its pool is still known
    reason = "model unavailable: anthropic:claude-test: HTTP 429 after retries (busy)"
    assert rl.requeue_wait(keys[0], reason) == pytest.approx(20)
    assert rl.requeue_wait(keys[1], "model unavailable: cannot reach the API") is None
    assert rl.requeue_wait(keys[1], reason) == 1.0  # sent no report (lost): the minimum wait


@pytest.mark.parametrize(
    "reason",
    [
        'git: fatal: adding files failed: error: open("HTTP 429"): Permission denied',
        "file system error under /w: [Errno 36] File name too long: 'HTTP 529 x'",
        "agent stopped (1): HTTP 429 after retries",
    ],
)
def test_agent_text_in_a_failure_reason_is_no_rate_limit(reason: str) -> None:
    """Only the worker's own model-unavailable reason re-queues unspent: a file name or message the agent
    chose (in a git or file system error) that reads `HTTP 429` must not make its task run forever."""
    rl = limits(Clock())
    keys = run(rl, 1)
    rl.observe(keys[0], limited(retry_after_s=30), lambda t: None)
    assert rl.requeue_wait(keys[0], reason) is None


def test_a_provider_answering_429_forever_does_not_hold_a_task_forever() -> None:
    """After `max_requeues` unspent re-queues the next rate-limited failure is an ordinary one (None)."""
    rl = limits(Clock(), max_requeues=3)
    reason = "model unavailable: openai:gpt-test: HTTP 429 after retries (insufficient_quota)"
    waits = [rl.requeue_wait(("t", n), reason) for n in range(1, 5)]
    assert waits == [1.0, 1.0, 1.0, None]
    assert rl.requeue_wait(("other", 1), reason) == 1.0  # counted per task


def test_the_summary_says_how_often_and_why() -> None:
    """One line per throttled pool: times, paused seconds, the last reason, the limit now."""
    clock = Clock()
    rl = limits(clock)
    keys = run(rl, 4)
    rl.observe(keys[0], limited(retry_after_s=12), lambda t: None)
    assert rl.summary() == {
        POOL: "throttled 1 time, dispatch paused 12 s in all; last: 429, retry after 12 s; limit now 2"
    }


def test_disabled_limits_admit_everything() -> None:
    """`enabled = false`: reports change nothing."""
    clock, seen = Clock(), []
    rl = RateLimits(RateLimitConfig(enabled=False), clock=clock)
    keys = run(rl, 4)
    rl.observe(keys[0], limited(retry_after_s=60), seen.append)
    assert rl.admits(POOL, 100) and seen == []


def test_pools_are_per_provider_and_key_fingerprint() -> None:
    """Two keys of one provider are two pools; scripted and unknown providers are not limited."""
    a = pool_of("anthropic:claude-x", {"ANTHROPIC_API_KEY": "key-a"})
    b = pool_of("anthropic:claude-x", {"ANTHROPIC_API_KEY": "key-b"})
    assert a and b and a != b and a.startswith("anthropic key ") and "key-a" not in a
    assert pool_of("openai:gpt-x", {}) == "openai"
    assert pool_of("scripted:/tmp/s.yaml", {}) is None and pool_of(None, {}) is None


def test_transition_records_are_plain() -> None:
    """A Transition names its kind, pool and message (what the scheduler emits)."""
    t = Transition("throttled", POOL, "m")
    assert (t.kind, t.pool, t.message) == ("throttled", POOL, "m")
