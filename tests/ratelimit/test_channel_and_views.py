"""The worker's report channel (its own stdout, never its commands'), and what a person reads."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from agent_runner.cli.run_view import LineView, LiveView, print_summary
from agent_runner.coordinator.events import RunEvent, RunSummary

WORKER = """
import os, subprocess
from agent_runner.models import ratelimit
from agent_runner.worker.serve import _line_writer, reporting, stdout_to_stderr
signal = ratelimit.RateSignal(provider="anthropic", status=429, retry_after_s=3)
with stdout_to_stderr() as fd, reporting(_line_writer(fd)):
    ratelimit.report(signal)
    print("the worker's own print")
    forged = ratelimit.format_line(signal.model_copy(update={"retry_after_s": 999})).strip()
    subprocess.run(["sh", "-c", f"echo '{forged}'; echo '{forged}' >&2; echo '{forged}' >/dev/fd/{fd}"])
ratelimit.report(signal)  # after the block: no sink, dropped
print('{"result": "line"}')
"""
MESSAGE = (
    "anthropic key 3f9a1c2e: 429, retry after 12 s; no new attempt for 12 s, at most 4 in flight (8 now)"
)


def test_reports_go_on_the_workers_stdout_and_its_commands_cannot_write_there() -> None:
    """A report reaches stdout before the result; a command the worker starts only reaches stderr."""
    done = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("agent-runner-rate: ") and '"retry_after_s":3.0' in lines[0]
    assert lines[1:] == ['{"result": "line"}'], done.stdout
    assert "999" in done.stderr and "the worker's own print" in done.stderr


def test_piped_output_prints_a_line_when_throttling_starts_and_ends(tmp_path: Path) -> None:
    """Without a terminal: `HH:MM:SS throttled: <pool>: <why>` and `... unthrottled: ...`."""
    out = io.StringIO()
    view = LineView(Console(file=out, width=300), tmp_path)
    view.handle(RunEvent("throttled", message=MESSAGE))
    view.handle(
        RunEvent("unthrottled", message="anthropic key 3f9a1c2e: dispatch resumes, at most 4 in flight")
    )
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(f" throttled: {MESSAGE}")
    assert " unthrottled: anthropic key 3f9a1c2e: dispatch resumes" in lines[1]


def test_the_live_table_and_the_summary_say_why_dispatch_was_throttled(tmp_path: Path) -> None:
    """The live view lists the throttling under the table with its time; the summary has a line per pool."""
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=True)
    view = LiveView(console, tmp_path)
    view.handle(RunEvent("throttled", message=MESSAGE))
    console.print(view.render())
    assert f"throttled: {MESSAGE}" in out.getvalue()
    summary = RunSummary(
        throttled={"anthropic key 3f9a1c2e": "throttled 2 times, dispatch paused 31 s in all"}
    )
    plain = io.StringIO()
    print_summary(Console(file=plain, width=300), summary)
    expected = "  throttled anthropic key 3f9a1c2e: throttled 2 times, dispatch paused 31 s in all"
    assert expected in plain.getvalue()
