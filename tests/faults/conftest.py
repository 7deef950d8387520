"""Fault-suite fixtures: a fresh project per scenario, and one line per scenario plus a summary table."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faults_helpers import GIT_ENV, Project, Scenario

ROWS = pytest.StashKey[list[tuple[str, str, float]]]()


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A git repo with calc.py, a bare origin, a fast runner config and an empty tasks/ folder."""
    return Project.create(tmp_path)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Scenario]:
    """Time the scenario and print `scenario, outcome, time` when it ends (kept for the summary table)."""
    record = Scenario(request.node.name.removeprefix("test_"))
    started = time.monotonic()
    yield record
    elapsed = time.monotonic() - started
    passed = not getattr(request.node, "_fault_failed", False)
    outcome = record.outcome if passed else f"FAILED ({record.outcome})"
    request.config.stash.setdefault(ROWS, []).append((record.name, outcome, elapsed))
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{record.name}, {outcome}, {elapsed:.1f} s")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:
        item._fault_failed = True  # type: ignore[attr-defined]
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    width = max(len(name) for name, _, _ in rows)
    terminalreporter.section("fault-injection scenarios")
    terminalreporter.write_line(f"{'scenario':<{width}}  {'time':>7}  outcome")
    for name, outcome, elapsed in rows:
        terminalreporter.write_line(f"{name:<{width}}  {elapsed:6.1f}s  {outcome}")
    terminalreporter.write_line(f"{len(rows)} scenarios, {sum(r[2] for r in rows):.1f} s in total")
