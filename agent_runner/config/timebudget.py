"""A run's time budget as written: `--for 8h` (also 90m, 1h30m) and `--until 07:00` (local time, next one).

The parsers raise ValueError with a message saying what is accepted; the config and the CLI turn it into
their own errors. `ends_at` turns both into one moment: the earlier of the two.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
MAX_HOURS = 24 * 7  # a week: longer than any run anyone means; a typo (`--for 800h`) is refused
DURATION_HELP = "a duration such as 8h, 90m or 1h30m"
CLOCK_HELP = "a local time of day as HH:MM, such as 07:00 or 23:30"


def parse_duration(text: str) -> float:
    """Return the seconds of `8h`, `90m` or `1h30m`; raise ValueError naming the accepted forms."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"'{text}' is not {DURATION_HELP}")
    hours, minutes = (int(part or 0) for part in match.groups())
    seconds = hours * 3600 + minutes * 60
    if seconds <= 0 or seconds > MAX_HOURS * 3600:
        raise ValueError(f"'{text}' must be more than 0 minutes and at most {MAX_HOURS}h")
    return float(seconds)


def parse_clock(text: str) -> tuple[int, int]:
    """Return (hour, minute) of `07:00`; raise ValueError naming the accepted form."""
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not {CLOCK_HELP}")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"'{text}' is not {CLOCK_HELP} (hours 00-23, minutes 00-59)")
    return hour, minute


def next_occurrence(clock: str, now: float) -> float:
    """Return the next moment (time.time()) after `now` when the local clock reads `clock`."""
    hour, minute = parse_clock(clock)
    # naive local times: `timestamp()` then asks the local zone for the offset of `at` itself, so a DST
    # change between now and then is counted (an aware `astimezone()` would keep today's offset)
    here = datetime.fromtimestamp(now)
    at = here.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= here:
        at += timedelta(days=1)
    return at.timestamp()


def ends_at(*, run_for: str | None, run_until: str | None, started: float) -> float | None:
    """Return when a run that started at `started` must end (the earlier budget), or None without one."""
    ends = [started + parse_duration(run_for)] if run_for else []
    ends += [next_occurrence(run_until, started)] if run_until else []
    return min(ends, default=None)
