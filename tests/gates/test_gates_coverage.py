"""The coverage plugin (targets only, while project code runs) and after-runs that trace only new tests."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from agent_runner.core.result import GateVerdict
from agent_runner.gates.covgate import CoverageGate
from agent_runner.gates.pytest import SuiteRunner, run_tests

MEAN_TESTS = """from calc.stats import mean


def test_mean():
    assert mean([1, 2, 3]) == 2
"""


def test_only_the_target_files_are_measured(calc_repo: Path, make_ctx) -> None:
    """A file target is measured alone (not its folder); never imported, all its statements are missing."""
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"])
    report = run_tests(ctx, coverage_of=["calc/stats.py"])
    assert report.coverage is not None and set(report.coverage) == {"calc/stats.py"}
    stats = report.coverage["calc/stats.py"]
    assert stats.statements > 0 and stats.covered == 0 and len(stats.missing) == stats.statements


def test_import_time_lines_count_when_a_conftest_imports_the_target(calc_repo: Path, make_ctx) -> None:
    """Lines a target runs when a conftest imports it (before collection) count as covered."""
    (calc_repo / "tests/conftest.py").write_text("import calc.stats  # noqa: F401\n")
    report = run_tests(make_ctx(calc_repo, kind="write-tests"), coverage_of=["calc/stats.py"])
    assert report.coverage is not None
    stats = report.coverage["calc/stats.py"]
    assert 4 in stats.executed and 0 < stats.covered < stats.statements  # `def mean` ran, its body did not


def test_after_run_traces_only_new_test_files_and_matches_a_full_run(calc_repo: Path, make_ctx) -> None:
    """When only test modules changed, the after-run traces just them; the joined figure equals a full run."""
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc"])
    suite = SuiteRunner(with_coverage=True)
    suite.report(ctx)
    (calc_repo / "tests/test_stats.py").write_text(MEAN_TESTS)
    after = suite.report(ctx)
    assert after.traced_only == ("tests/test_stats.py",)
    full = run_tests(ctx, coverage_of=["calc"])
    assert full.traced_only is None and after.coverage == full.coverage
    assert after.coverage is not None and after.coverage["calc/stats.py"].covered > 0


@pytest.mark.parametrize("other", ["tests/conftest.py", "tests/data.txt", "calc/core.py"])
def test_after_run_traces_everything_when_a_non_test_module_changed(
    calc_repo: Path, make_ctx, other: str
) -> None:
    """A changed conftest, test data or source file makes the after-run measure the whole suite again."""
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"])
    suite = SuiteRunner(with_coverage=True)
    suite.report(ctx)
    (calc_repo / "tests/test_stats.py").write_text(MEAN_TESTS)
    path = calc_repo / other
    path.write_text((path.read_text() if path.exists() else "") + "\n# changed\n")
    after = suite.report(ctx)
    assert after.traced_only is None
    assert after.coverage is not None and after.coverage["calc/stats.py"].covered > 0


def test_missing_coverage_is_a_clear_gate_error(calc_repo: Path, make_ctx) -> None:
    """Without coverage.py where tests run, they still run and the coverage gate names what is missing."""
    (calc_repo / "coverage.py").write_text("raise ImportError('no coverage here')\n")  # shadows the real one
    ctx = make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"])
    ctx = dataclasses.replace(ctx, test_command=f"{sys.executable} -m pytest -q -p no:pytest_cov")
    gate = CoverageGate(SuiteRunner(with_coverage=True))
    baseline = gate.baseline(ctx)
    assert baseline.passed and baseline.coverage is None
    result = gate.check(ctx, baseline)
    assert result.verdict == GateVerdict.ERROR and "coverage.py is not installed" in result.details


def test_coverage_is_imported_while_the_tests_run() -> None:
    """An after-run imports coverage.py on a thread meanwhile, so mapping its lines later need not wait."""
    code = (
        "import sys, threading\n"
        "from agent_runner.gates.coverage import import_coverage_meanwhile\n"
        "before = 'coverage' in sys.modules\n"
        "import_coverage_meanwhile()\n"
        "[t.join() for t in threading.enumerate() if t.name == 'import-coverage']\n"
        "print(before, 'coverage' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
