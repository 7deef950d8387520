"""Rate-limit hints read from a provider's answers, and the line they travel on to the coordinator.

Each HTTP try of a model call (first or retried by the SDK) passes its status and headers to `RateWatch`,
which turns a rate-limit answer (429, 529 overloaded), or a success whose remaining-quota headers say the
quota is nearly gone, into a `RateSignal` and hands it to this process's sink. The worker sets the sink
(`set_sink`) to write one line on a channel only it holds (its own stdout, or the fork server's pipe);
the coordinator's executor reads the lines back (`parse_line`, bounded and validated) while the attempt
runs. Keys are never sent: a key is named by `fingerprint`, 8 hex digits of its SHA-256.

Headers read: Anthropic `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,
reset}` (reset is an RFC 3339 time), OpenAI `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
(reset is a duration such as `1s`, `6m0s` or `20ms`), and `retry-after-ms` / `retry-after`.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_runner.models.deadline import retry_after

MARK = "agent-runner-rate: "  # a report line starts with this; a result line starts with `{`
MAX_LINE_BYTES = 1024  # a signal is under 300 bytes; a longer line is no report
MAX_WAIT_S = 3600.0  # a wait, or a quota reset, longer than this is read as this
LIMITED_STATUSES = frozenset({429, 529})  # rate limited; overloaded (Anthropic)
LOW_QUOTA_FRACTION = 0.05  # a success with this little of its quota left is reported
LOW_QUOTA_EVERY_S = 1.0  # at most one low-quota report a second per model
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class RateSignal(BaseModel):
    """One answer of a provider that says something about its rate limits (a bounded, checked record)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,19}$")
    key: str = Field(default="", pattern=r"^([0-9a-f]{8})?$", description="The key's fingerprint.")
    status: int = Field(ge=100, le=599)
    retry_after_s: float = Field(default=0.0, ge=0, le=MAX_WAIT_S)
    requests_remaining: int | None = Field(default=None, ge=0)
    requests_limit: int | None = Field(default=None, ge=0)
    tokens_remaining: int | None = Field(default=None, ge=0)
    tokens_limit: int | None = Field(default=None, ge=0)
    reset_s: float | None = Field(default=None, ge=0, le=MAX_WAIT_S)

    @property
    def is_limited(self) -> bool:
        """Return whether the answer refused the call for its rate (429) or load (529)."""
        return self.status in LIMITED_STATUSES

    @property
    def is_exhausted(self) -> bool:
        """Return whether the quota headers say no request (or no token) is left until the reset."""
        return self.requests_remaining == 0 or self.tokens_remaining == 0

    def reason(self) -> str:
        """Return what a person reads: `429, retry after 12 s` or `requests quota 0 of 50 left`."""
        if self.is_limited:
            wait = f", retry after {seconds_text(self.retry_after_s)}" if self.retry_after_s else ""
            return f"{self.status}{wait}"
        for name, left, limit in (
            ("requests", self.requests_remaining, self.requests_limit),
            ("tokens", self.tokens_remaining, self.tokens_limit),
        ):
            if left is not None and _is_low(left, limit):
                return f"{name} quota {left} of {limit if limit is not None else '?'} left"
        return f"{self.status}"


def seconds_text(seconds: float) -> str:
    """Return `0.3 s` below ten seconds, `12 s` from there."""
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def fingerprint(key: str | None) -> str:
    """Return 8 hex digits of the key's SHA-256 ('' for no key): names a key without revealing it."""
    return hashlib.sha256(key.encode()).hexdigest()[:8] if key else ""


def read_signal(provider: str, key: str, status: int, headers: Mapping[str, str]) -> RateSignal | None:
    """Return the signal in one answer, or None when it says nothing worth reporting."""
    quota = _openai_quota(headers) if provider == "openai" else _anthropic_quota(headers)
    signal = RateSignal(
        provider=provider, key=key, status=status,
        retry_after_s=min(max(retry_after(headers), 0.0), MAX_WAIT_S), **quota._asdict(),
    )  # fmt: skip
    if signal.is_limited or _quota_is_low(signal):
        return signal
    return None


def _quota_is_low(signal: RateSignal) -> bool:
    return any(
        left is not None and _is_low(left, limit)
        for left, limit in (
            (signal.requests_remaining, signal.requests_limit),
            (signal.tokens_remaining, signal.tokens_limit),
        )
    )


def _is_low(left: int, limit: int | None) -> bool:
    return left == 0 or (limit is not None and limit > 0 and left <= limit * LOW_QUOTA_FRACTION)


class Quota(NamedTuple):
    """The remaining-quota headers of one answer."""

    requests_remaining: int | None
    requests_limit: int | None
    tokens_remaining: int | None
    tokens_limit: int | None
    reset_s: float | None


def _anthropic_quota(headers: Mapping[str, str]) -> Quota:
    prefix = "anthropic-ratelimit-"
    tokens = [
        (_int(headers.get(f"{prefix}{kind}-remaining")), _int(headers.get(f"{prefix}{kind}-limit")), kind)
        for kind in ("tokens", "input-tokens", "output-tokens")
    ]
    known = [entry for entry in tokens if entry[0] is not None]
    left, limit, kind = min(known, key=lambda entry: entry[0] or 0) if known else (None, None, "tokens")
    resets = [_until(headers.get(f"{prefix}{name}-reset")) for name in ("requests", kind)]
    return Quota(
        _int(headers.get(f"{prefix}requests-remaining")), _int(headers.get(f"{prefix}requests-limit")),
        left, limit, max((r for r in resets if r is not None), default=None),
    )  # fmt: skip


def _openai_quota(headers: Mapping[str, str]) -> Quota:
    resets = [_duration(headers.get(f"x-ratelimit-reset-{name}")) for name in ("requests", "tokens")]
    return Quota(
        _int(headers.get("x-ratelimit-remaining-requests")), _int(headers.get("x-ratelimit-limit-requests")),
        _int(headers.get("x-ratelimit-remaining-tokens")), _int(headers.get("x-ratelimit-limit-tokens")),
        max((r for r in resets if r is not None), default=None),
    )  # fmt: skip


def _int(value: str | None) -> int | None:
    try:
        number = int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


def _until(value: str | None) -> float | None:
    """Return the seconds until an RFC 3339 time (None when absent or unreadable)."""
    if not value or len(value) > 64:
        return None
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return _clamp(at.timestamp() - time.time())


def _duration(value: str | None) -> float | None:
    """Return the seconds of a duration such as `1s`, `6m0s`, `1h2m3.5s` or `20ms` (None if unreadable)."""
    if not value or len(value) > 32:
        return None
    parts = _DURATION.findall(value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    return _clamp(sum(float(n) * _UNIT_S[u] for n, u in parts))


def _clamp(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_WAIT_S)


# -- the channel ------------------------------------------------------------------------------------------
Sink = Callable[[str], None]
_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Send this process's report lines to `sink` (None: drop them, the default)."""
    global _sink
    _sink = sink


def report(signal: RateSignal) -> None:
    """Hand one signal, as a line, to this process's sink (if any)."""
    sink = _sink
    if sink is not None:
        sink(format_line(signal))


def format_line(signal: RateSignal) -> str:
    """Return the signal as one report line (with its newline)."""
    return MARK + signal.model_dump_json(exclude_none=True) + "\n"


def parse_line(line: bytes | str) -> RateSignal | None:
    """Return the signal on a report line, or None for any other line (too long, not one, invalid)."""
    data = line.encode("utf-8", "replace") if isinstance(line, str) else line
    if len(data) > MAX_LINE_BYTES or not data.startswith(MARK.encode()):
        return None
    try:
        return RateSignal.model_validate_json(data[len(MARK) :])
    except (ValidationError, ValueError):
        return None


class RateWatch:
    """One model's per-try hook: reads each answer and reports what it says about rate limits."""

    def __init__(self, provider: str, api_key: str | None) -> None:
        self.provider, self.key = provider, fingerprint(api_key)
        self._lock = threading.Lock()
        self._low_at = 0.0

    def seen(self, status: int, headers: Mapping[str, str]) -> None:
        """Report the answer's signal, if any (a low quota at most once a second); never raises."""
        try:
            signal = read_signal(self.provider, self.key, status, headers)
        except ValidationError:
            return
        if signal is None or (not signal.is_limited and not self._low_due()):
            return
        report(signal)

    def _low_due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._low_at < LOW_QUOTA_EVERY_S:
                return False
            self._low_at = now
            return True


AttemptKey = tuple[str, int]


class ReportTap:
    """An executor's end of the channel: report lines of attempt `key` in, checked signals to `sink` out.

    The coordinator sets `sink` (its limiter's `observe`); until then, and for any line that is no valid
    report, nothing happens.
    """

    def __init__(self) -> None:
        self.sink: Callable[[AttemptKey, RateSignal], None] | None = None

    def listener(self, key: AttemptKey) -> Callable[[bytes | str], None]:
        """Return the function an executor calls with each line attempt `key`'s worker sends."""

        def take(line: bytes | str) -> None:
            sink = self.sink
            if sink is not None and (signal := parse_line(line)) is not None:
                sink(key, signal)

        return take
