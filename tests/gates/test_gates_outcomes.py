"""Test outcomes from our pytest plugin: the same ids and outcomes as junit XML, and the junit fallback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task
from agent_runner.gates.outcomes import IdSource
from agent_runner.gates.pytest import NO_PLUGINS, SuiteRunner, report_from_json, report_to_json, run_tests

COMMAND = f"env PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q"
# A test command that sets PYTHONPATH itself: pytest cannot import the runner's plugins.
OWN_PATH = "env PYTHONPATH={} PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 " + f"{sys.executable} -m pytest -q"

CASES = """import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown")


@pytest.fixture
def skip_in_setup():
    pytest.skip("not here")


def test_pass():
    assert True


def test_fail():
    assert 1 == 2


def test_setup_error(broken_setup):
    pass


def test_teardown_error(broken_teardown):
    pass


def test_fail_and_teardown_error(broken_teardown):
    assert 1 == 2


def test_skip():
    pytest.skip("no")


def test_skip_setup(skip_in_setup):
    pass


@pytest.mark.skip(reason="marker")
def test_skip_marker():
    pass


@pytest.mark.xfail(reason="known")
def test_xfail():
    assert 1 == 2


def test_xfail_call():
    pytest.xfail("imperative")


@pytest.mark.xfail(reason="known", strict=False)
def test_xpass():
    pass


@pytest.mark.xfail(reason="known", strict=True)
def test_xpass_strict():
    pass


@pytest.mark.xfail(reason="wrong exception", raises=KeyError)
def test_xfail_other_exception():
    raise ValueError("not a KeyError")


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1


class TestGroup:
    def test_method(self):
        pass
"""

EXPECTED = {
    "passed": {"test_pass", "test_xpass", "test_param[1]", "TestGroup::test_method"},
    "failed": {
        "test_fail",
        "test_setup_error",
        "test_teardown_error",
        "test_fail_and_teardown_error",
        "test_xpass_strict",
        "test_xfail_other_exception",
        "test_param[2]",
    },
    "skipped": {"test_skip", "test_skip_setup", "test_skip_marker", "test_xfail", "test_xfail_call"},
}


def make_checkout(tmp_path: Path) -> Path:
    """Return a git checkout with a test of every outcome and a module skipped as a whole."""
    checkout = tmp_path / "checkout"
    (checkout / "tests").mkdir(parents=True)
    (checkout / "tests/test_cases.py").write_text(CASES)
    (checkout / "tests/test_skipped_module.py").write_text(
        "import pytest\n\npytest.skip('whole module', allow_module_level=True)\n"
    )
    git_dir = tmp_path / "checkout.git"  # where the runner keeps a checkout's git dir
    subprocess.run(["git", "init", "-q", "--separate-git-dir", str(git_dir)], cwd=checkout, check=True)
    return checkout


def context(checkout: Path, command: str = COMMAND) -> GateContext:
    """Return a gate context running `command` in the checkout."""
    return GateContext(checkout, Task(id="t", kind="change"), "HEAD", command)


def expected(prefix: str = "") -> dict[str, set[str]]:
    """Return the ids junit gives the cases by outcome (`module.Class::test`; a skipped module: its name)."""
    module = f"{prefix}tests.test_cases"
    ids = {
        k: {f"{module}.{name}" if "::" in name else f"{module}::{name}" for name in names}
        for k, names in EXPECTED.items()
    }
    skipped_module = "tests.test_skipped_module"
    ids["skipped"].add(f"{prefix[:-1]}::{skipped_module}" if prefix else skipped_module)
    return ids


def by_outcome(report) -> dict[str, set[str]]:
    """Return a report's ids by outcome."""
    return {k: set(getattr(report, k)) for k in ("passed", "failed", "skipped")}


@pytest.mark.parametrize("ids_from", [IdSource.PLUGIN, IdSource.JUNIT])
def test_every_outcome_maps_like_junit(tmp_path: Path, ids_from: IdSource) -> None:
    """Fail, setup/teardown error, skip, xfail, xpass (strict or not) map alike from both sources."""
    report = run_tests(context(make_checkout(tmp_path)), ids_from=ids_from)
    assert report.has_ids and report.ids_from is ids_from
    assert by_outcome(report) == expected()
    assert report.counts() == {"passed": 4, "failed": 7}


@pytest.mark.parametrize("ids_from", [IdSource.PLUGIN, IdSource.JUNIT])
def test_a_module_that_fails_to_collect_fails_under_its_name(tmp_path: Path, ids_from: IdSource) -> None:
    """A collection error fails the module's id (pytest then runs no test), from either source."""
    checkout = make_checkout(tmp_path)
    (checkout / "tests/test_broken.py").write_text("import no_such_module_here\n")
    report = run_tests(context(checkout), ids_from=ids_from)
    assert report.exit_code == 2 and report.ids_from is ids_from
    assert by_outcome(report) == {
        "passed": set(),
        "failed": {"tests.test_broken"},
        "skipped": {"tests.test_skipped_module"},
    }


def test_junit_prefix_gives_the_same_ids_from_both_sources(tmp_path: Path) -> None:
    """A repo's --junitprefix names the plugin's ids as it names junit's (either source compares)."""
    ctx = context(make_checkout(tmp_path), f"{COMMAND} --junitprefix=pfx")
    plugin, junit = run_tests(ctx), run_tests(ctx, ids_from=IdSource.JUNIT)
    assert plugin.ids_from is IdSource.PLUGIN and junit.ids_from is IdSource.JUNIT
    assert by_outcome(plugin) == by_outcome(junit) == expected("pfx.")


def test_a_repos_own_junitxml_writes_nothing_into_the_checkout(tmp_path: Path) -> None:
    """A --junitxml in the repo's pytest options is not written into the checkout during gate runs."""
    checkout = make_checkout(tmp_path)
    (checkout / "pytest.ini").write_text("[pytest]\naddopts = --junitxml=reports/junit.xml\n")
    report = run_tests(context(checkout))
    assert report.ids_from is IdSource.PLUGIN and by_outcome(report) == expected()
    assert not (checkout / "reports").exists()


def test_junit_is_the_fallback_when_the_plugin_cannot_load(tmp_path: Path) -> None:
    """A test command that replaces PYTHONPATH cannot import our plugin: the ids come from junit instead."""
    checkout = make_checkout(tmp_path)
    report = run_tests(context(checkout, OWN_PATH.format(tmp_path)))
    assert report.ids_from is IdSource.JUNIT and by_outcome(report) == expected()


def test_coverage_reports_why_when_the_plugins_cannot_load(tmp_path: Path) -> None:
    """Without our plugins, a coverage run still has junit ids, and names the reason coverage is missing."""
    checkout = make_checkout(tmp_path)
    ctx = context(checkout, OWN_PATH.format(tmp_path))
    report = run_tests(ctx, coverage_of=["tests"])
    assert report.coverage is None and report.coverage_error == NO_PLUGINS and report.has_ids


def test_after_runs_take_ids_from_the_baselines_source(tmp_path: Path) -> None:
    """A baseline with junit ids (plugin not loadable) makes the after-run use junit; the cache keeps it."""
    checkout = make_checkout(tmp_path)
    suite = SuiteRunner()
    ctx = context(checkout, OWN_PATH.format(tmp_path))
    baseline = suite.report(ctx)
    (checkout / "tests/test_new.py").write_text("def test_new():\n    pass\n")
    after = suite.report(ctx)
    assert baseline.ids_from is after.ids_from is IdSource.JUNIT
    assert after.passed - baseline.passed == {"tests.test_new::test_new"}
    assert report_from_json(report_to_json(baseline)).ids_from is IdSource.JUNIT
