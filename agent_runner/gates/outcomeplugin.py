"""The pytest plugin every pytest gate run loads (`-p agent_runner_gateoutcomes`): test outcomes as JSON.

The runner never imports this module: it copies the file into the gate's scratch folder, puts that folder on
PYTHONPATH and names the report file in AGENT_RUNNER_GATEOUTCOMES. It replaces `--junitxml` (building and
writing the XML cost ~0.05-0.1 s a run on a 250-test suite) and gives what the runner read from junit XML:
the same test ids (pytest's own junit naming, `--junitprefix` included) and the same outcome per id. A
failure or an error in setup, call or teardown (or collection) fails the id; a skip, an xfail, or a
failed call that was xfail-marked skips it; a non-strict xpass passes, a strict one fails.

Only the controlling process records: pytest-xdist forwards every worker's reports to it, as for junit.
The report is {"passed": [...], "failed": [...], "skipped": [...]}.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

REPORT_ENV = "AGENT_RUNNER_GATEOUTCOMES"

try:  # the junit plugin's own naming, so ids match a junit report of the same pytest exactly
    from _pytest.junitxml import bin_xml_escape, mangle_test_address
except ImportError:  # an older or newer pytest without these helpers

    def bin_xml_escape(arg: object) -> str:
        """Return the text as is (the junit plugin escapes XML here)."""
        return str(arg)

    def mangle_test_address(address: str) -> list[str]:
        """Split a node id the way pytest's junit plugin does."""
        path, bracket, params = address.partition("[")
        names = path.split("::")
        names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
        names[-1] += bracket + params
        return names


def junit_id(nodeid: str, prefix: str | None) -> str:
    """Return the id a junit report gives this node: `classname::name`, or the name alone."""
    names = mangle_test_address(nodeid)
    classnames = ([prefix] if prefix else []) + names[:-1]
    name = names[-1]
    if not (name.isascii() and name.isprintable()):  # printable ASCII is all legal XML: nothing to escape
        name = str(bin_xml_escape(name))
    return f"{'.'.join(classnames)}::{name}" if classnames else name


def report_tag(report: pytest.TestReport) -> str | None:
    """Return what a setup/call/teardown report adds to its test: failed, skipped, "" (present) or None."""
    if report.failed:
        is_xfail_call = report.when == "call" and hasattr(report, "wasxfail")
        return "skipped" if is_xfail_call else "failed"  # junit files that call as skipped
    if report.skipped:
        return "skipped"
    if report.when == "teardown" or (report.passed and report.when == "call"):
        return ""
    return None


class Outcomes:
    """Collects the tags of every test id and writes them as passed/failed/skipped lists."""

    def __init__(self, path: Path, prefix: str | None) -> None:
        self.path = path
        self.prefix = prefix
        self.tags: dict[str, set[str]] = {}
        self.ids: dict[str, str] = {}  # node id -> junit id (three reports a test)

    def add(self, nodeid: str, tag: str) -> None:
        """Record one tag for the test id of a node."""
        if (test := self.ids.get(nodeid)) is None:
            test = self.ids[nodeid] = junit_id(nodeid, self.prefix)
        self.tags.setdefault(test, set()).add(tag)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record a setup, call or teardown report."""
        tag = report_tag(report)
        if tag is not None:
            self.add(report.nodeid, tag)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module or class that fails to collect fails; one skipped at collection is skipped."""
        if not report.passed:
            self.add(report.nodeid, "failed" if report.failed else "skipped")

    def pytest_internalerror(self, excrepr: object) -> None:
        """An internal error fails the run's `pytest::internal` id (as in junit)."""
        self.tags.setdefault("pytest::internal", set()).add("failed")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report (a temporary file renamed into place: never half written)."""
        buckets: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
        for test, tags in sorted(self.tags.items()):
            bucket = "failed" if "failed" in tags else "skipped" if "skipped" in tags else "passed"
            buckets[bucket].append(test)
        part = self.path.with_name(f"{self.path.name}.{os.getpid()}.part")
        part.write_text(json.dumps(buckets), encoding="utf-8")
        os.replace(part, self.path)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Record outcomes in the controlling process (not in pytest-xdist workers)."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    # A repo's own --junitxml (addopts) would write into the checkout, and cost what this plugin saves.
    # Runs before the junit plugin's pytest_configure, which then does nothing.
    config.option.xmlpath = None
    if not hasattr(config, "workerinput"):
        prefix = getattr(config.option, "junitprefix", None)
        config.pluginmanager.register(Outcomes(Path(path), prefix), "agent_runner_gateoutcomes_state")
