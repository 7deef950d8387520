"""The time budget as written (`--for 8h`, `--until 07:00`): parsed, refused with a usage error, merged."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import load_config
from agent_runner.config.timebudget import ends_at, next_occurrence, parse_clock, parse_duration
from agent_runner.core.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"), [("8h", 28800), ("90m", 5400), ("1h30m", 5400), ("0h5m", 300), (" 2H ", 7200)]
)
def test_durations(text: str, seconds: float) -> None:
    """Hours, minutes, or both, in that order."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["8", "h", "", "8x", "1h30", "30m1h", "0m", "1.5h", "-1h", "200h"])
def test_bad_durations_name_the_accepted_forms(text: str) -> None:
    """No unit, a unit alone, the wrong order, zero, a fraction, past a week: refused, saying what works."""
    with pytest.raises(ValueError, match=r"8h, 90m or 1h30m|more than 0 minutes"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["7", "24:00", "07:60", "7h", "07:00pm", "07-00"])
def test_bad_clocks_name_the_accepted_form(text: str) -> None:
    """Only HH:MM on a 24-hour clock."""
    with pytest.raises(ValueError, match="HH:MM"):
        parse_clock(text)


def test_until_is_the_next_occurrence_in_local_time() -> None:
    """Before 07:00 it is today's 07:00; at or after it, tomorrow's."""
    morning = datetime(2030, 3, 4, 6, 0).timestamp()
    evening = datetime(2030, 3, 4, 22, 0).timestamp()
    assert datetime.fromtimestamp(next_occurrence("07:00", morning)) == datetime(2030, 3, 4, 7, 0)
    assert datetime.fromtimestamp(next_occurrence("07:00", evening)) == datetime(2030, 3, 5, 7, 0)
    assert next_occurrence("06:00", morning) == datetime(2030, 3, 5, 6, 0).timestamp()


def test_the_earlier_budget_ends_the_run() -> None:
    """With both, the run ends at the earlier; with neither, never."""
    now = datetime(2030, 3, 4, 6, 0).timestamp()
    assert ends_at(run_for="8h", run_until="07:00", started=now) == now + 3600
    assert ends_at(run_for="30m", run_until="07:00", started=now) == now + 1800
    assert ends_at(run_for=None, run_until=None, started=now) is None


def test_pyproject_and_environment_set_the_time_budget(tmp_path: Path) -> None:
    """`run_for` / `run_until` merge like every setting; a bad one names where it was set."""
    (tmp_path / "pyproject.toml").write_text('[tool.agent-runner]\nrun_for = "8h"\n', encoding="utf-8")
    config = load_config(tmp_path, environ={"AGENT_RUNNER_RUN_UNTIL": "07:00"})
    assert (config.run_for, config.run_until) == ("8h", "07:00")
    assert load_config(tmp_path, overrides={"run_for": "90m"}, environ={}).run_for == "90m"
    with pytest.raises(ConfigError, match=r"AGENT_RUNNER_RUN_FOR: 'run_for': '8 hours' is not a duration"):
        load_config(tmp_path, environ={"AGENT_RUNNER_RUN_FOR": "8 hours"})


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [("--for", "8x", "is not a duration such as 8h"), ("--until", "7pm", "is not a local time of day")],
)
def test_run_refuses_a_bad_time_budget_before_anything_starts(
    tmp_path: Path, flag: str, value: str, said: str
) -> None:
    """A usage error (exit 2) naming the flag, the value and the accepted form."""
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "run", flag, value])
    assert result.exit_code == 2
    assert flag in result.output and said in " ".join(result.output.split())
    assert not (tmp_path / "tasks").exists()


def test_a_time_budget_clock_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--until` follows the TZ the run sees: 07:00 in UTC+2 is 05:00 UTC."""
    monkeypatch.setenv("TZ", "Etc/GMT-2")
    time.tzset()
    try:
        now = datetime.fromisoformat("2030-03-04T00:00:00+00:00").timestamp()
        assert (
            next_occurrence("07:00", now) == datetime.fromisoformat("2030-03-04T05:00:00+00:00").timestamp()
        )
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("now", "until", "expected"),
    [
        ("2026-10-24T21:00:00+00:00", "07:00", "2026-10-25T06:00:00+00:00"),  # 23:00 CEST; 07:00 is CET
        ("2026-03-28T22:00:00+00:00", "07:00", "2026-03-29T05:00:00+00:00"),  # 23:00 CET; 07:00 is CEST
    ],
)
def test_until_across_a_dst_change_is_the_wall_clock_time(
    monkeypatch: pytest.MonkeyPatch, now: str, until: str, expected: str
) -> None:
    """`--until 07:00` the night the clocks change is 07:00 on the clock then, not an hour off."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        start = datetime.fromisoformat(now).timestamp()
        assert next_occurrence(until, start) == datetime.fromisoformat(expected).timestamp()
    finally:
        monkeypatch.undo()
        time.tzset()
