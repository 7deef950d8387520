"""What workers report: signals read from answers' headers, and the bounded line they travel on."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from agent_runner.executors.pipe import communicate_bounded
from agent_runner.models.ratelimit import (
    MARK,
    RateSignal,
    RateWatch,
    ReportTap,
    fingerprint,
    format_line,
    parse_line,
    read_signal,
    set_sink,
)


def test_an_anthropic_429_carries_its_wait_and_quota() -> None:
    """retry-after-ms wins over retry-after; a reset time becomes seconds from now; tokens take the least."""
    reset = (datetime.now(UTC) + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    headers = {
        "retry-after": "13", "retry-after-ms": "12000",
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-input-tokens-limit": "1000", "anthropic-ratelimit-input-tokens-remaining": "7",
        "anthropic-ratelimit-output-tokens-remaining": "900",
    }  # fmt: skip
    signal = read_signal("anthropic", "", 429, headers)
    assert signal is not None and signal.is_limited and signal.retry_after_s == 12
    assert (signal.requests_remaining, signal.requests_limit) == (0, 50)
    assert (signal.tokens_remaining, signal.tokens_limit) == (7, 1000)
    assert signal.reset_s == pytest.approx(30, abs=2)
    assert signal.reason() == "429, retry after 12 s"


@pytest.mark.parametrize(
    ("reset", "seconds"), [("20ms", 0.02), ("1s", 1), ("6m0s", 360), ("1h2m3.5s", 3723.5), ("soon", None)]
)
def test_openai_reset_durations(reset: str, seconds: float | None) -> None:
    """x-ratelimit-reset-* durations are read as seconds (capped at an hour); junk is ignored."""
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": reset}
    signal = read_signal("openai", "", 200, headers)
    assert signal is not None and signal.is_exhausted
    assert signal.reset_s == (None if seconds is None else pytest.approx(min(seconds, 3600)))


@pytest.mark.parametrize(
    ("status", "headers", "reported"),
    [
        (200, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "60"}, False),
        (200, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "5"}, True),
        (200, {"x-ratelimit-limit-tokens": "100", "x-ratelimit-remaining-tokens": "0"}, True),
        (200, {}, False),
        (500, {}, False),
        (529, {}, True),
        (429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, True),
    ],
)
def test_what_is_worth_a_report(status: int, headers: dict[str, str], reported: bool) -> None:
    """Rate-limit answers and nearly spent quotas are reported; plenty of quota and plain errors are not."""
    assert (read_signal("openai", "", status, headers) is not None) is reported


def test_a_line_round_trips_and_forged_lines_are_refused() -> None:
    """A report line parses back; too long, unmarked, malformed or out-of-range lines are no report."""
    signal = RateSignal(provider="anthropic", key=fingerprint("sk-secret"), status=429, retry_after_s=3)
    line = format_line(signal)
    assert parse_line(line.strip()) == signal and "sk-secret" not in line
    bad = [
        line.replace(MARK, "x"),
        MARK + "{not json",
        MARK + '{"provider": "anthropic", "status": 429, "extra": 1}',
        MARK + '{"provider": "anthropic", "status": 429, "retry_after_s": 1e9}',
        MARK + '{"provider": "anthropic", "status": 429, "key": "sk-ant-a-real-key-would-not-fit"}',
        MARK + '{"provider": "Anthropic; rm -rf", "status": 429}',
        MARK + '{"provider": "anthropic", "status": 429, "note": "' + "x" * 2000 + '"}',
    ]
    assert [parse_line(b) for b in bad] == [None] * len(bad)


def test_fingerprints_name_keys_without_revealing_them() -> None:
    """8 hex digits, stable per key, different for another key, empty for none."""
    assert fingerprint("k1") == fingerprint("k1") != fingerprint("k2")
    assert len(fingerprint("k1")) == 8 and fingerprint(None) == "" == fingerprint("")


def test_a_watch_reports_limits_always_and_low_quota_at_most_once_a_second() -> None:
    """Every 429 goes to the sink; a burst of low-quota successes sends one line."""
    lines: list[str] = []
    set_sink(lines.append)
    try:
        watch = RateWatch("openai", "sk-test")
        for _ in range(3):
            watch.seen(429, {"retry-after-ms": "10"})
            watch.seen(200, {"x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "1"})
    finally:
        set_sink(None)
    signals = [parse_line(line.strip()) for line in lines]
    assert [s.status for s in signals if s] == [429, 200, 429, 429]
    assert all(s and s.key == fingerprint("sk-test") for s in signals)


def test_report_lines_on_a_workers_stdout_arrive_while_it_runs_and_the_output_stays_whole() -> None:
    """communicate_bounded hands short stdout lines to on_line as they come; a long line is skipped."""
    line = format_line(RateSignal(provider="openai", status=429, retry_after_s=2))
    script = (
        "import sys, time\n"
        f"sys.stdout.write({line!r}); sys.stdout.flush()\n"
        "sys.stdout.write('{' + 'x' * 20000 + '}\\n'); sys.stdout.flush()\n"
        f"sys.stdout.write({line!r} + 'tail-without-newline')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    tap, seen = ReportTap(), []
    tap.sink = lambda key, signal: seen.append((key, signal.retry_after_s))
    stdout, _ = communicate_bounded(proc, b"", on_line=tap.listener(("t", 1)))
    assert seen == [(("t", 1), 2.0), (("t", 1), 2.0)]
    assert len(stdout) > 20000 and stdout.endswith(b"tail-without-newline")
