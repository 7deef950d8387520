"""write-tests gates with real pytest, coverage.py and mutants on the calc fixture project."""

from __future__ import annotations

from pathlib import Path

from agent_runner.core.result import GateVerdict

REAL_TESTS = """from calc.stats import clamp, mean, median


def test_mean():
    assert mean([1, 2, 3]) == 2
    assert mean([]) is None


def test_clamp():
    assert clamp(5, 0, 10) == 5
    assert clamp(-1, 0, 10) == 0
    assert clamp(11, 0, 10) == 10


def test_median():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([]) is None
"""

HOLLOW_TESTS = """from calc.stats import clamp, mean, median


def test_mean():
    mean([1, 2, 3])
    assert True


def test_clamp_and_median():
    clamp(5, 0, 10)
    median([3, 1, 2])
    assert True
"""

WEAK_TESTS = """import calc.stats


def test_has_functions():
    assert callable(calc.stats.mean)
    assert callable(calc.stats.median)
"""

FAILING_TEST = """

def test_known_bug():
    assert divide(1, 4) == 0
"""


def test_real_tests_are_accepted_with_coverage_gain(calc_repo: Path, make_ctx, gate_run) -> None:
    """Real tests for an untested module pass every gate; coverage gain and killed mutants are reported."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]))
    assert run.prestep.prompt_vars["coverage_before"] == 0.0
    assert run.prestep.prompt_vars["coverage"][0]["file"] == "calc/stats.py"
    (calc_repo / "tests/test_stats.py").write_text(REAL_TESTS)
    results = run.check()
    assert {r.verdict for r in results.values()} == {GateVerdict.PASS}, {
        n: r.details for n, r in results.items()
    }
    assert results["coverage"].before == {"percent": 0.0}
    assert results["coverage"].after["percent"] == 100.0
    assert results["mutants"].after["mutants"] >= 5
    assert results["mutants"].after["killed"] >= 1


def test_assert_true_tests_fail_the_mutation_gate(calc_repo: Path, make_ctx, gate_run) -> None:
    """Tests that run the code but assert nothing raise coverage yet fail the mutation gate."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]))
    (calc_repo / "tests/test_stats.py").write_text(HOLLOW_TESTS)
    results = run.check("coverage", "mutants")
    assert results["coverage"].verdict == GateVerdict.PASS
    assert results["mutants"].verdict == GateVerdict.FAIL
    assert "assert nothing" in results["mutants"].offending[0]


def test_tests_that_kill_no_mutant_fail(calc_repo: Path, make_ctx, gate_run) -> None:
    """Tests with assertions that never look at results survive every mutant and fail the gate."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]))
    (calc_repo / "tests/test_stats.py").write_text(WEAK_TESTS)
    results = run.check("mutants")
    assert results["mutants"].verdict == GateVerdict.FAIL
    assert results["mutants"].after["killed"] == 0
    assert results["mutants"].after["mutants"] >= 5
    assert all(line.startswith("survived: calc/stats.py:") for line in results["mutants"].offending)


def test_deleting_a_failing_test_is_rejected(calc_repo: Path, make_ctx, gate_run, commit) -> None:
    """Removing a test that failed at baseline makes the suite green but the diff policy rejects it."""
    core_tests = calc_repo / "tests/test_calc_core.py"
    original = core_tests.read_text()
    core_tests.write_text(original + FAILING_TEST)
    commit(calc_repo, "a failing test")
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]))
    core_tests.write_text(original)
    (calc_repo / "tests/test_stats.py").write_text(REAL_TESTS)
    results = run.check("tests", "diff-policy")
    assert results["tests"].verdict == GateVerdict.PASS
    assert results["diff-policy"].verdict == GateVerdict.FAIL
    assert results["diff-policy"].offending == ["[delete-tests] test_known_bug: test function removed"]


def test_write_tests_may_not_touch_code(calc_repo: Path, make_ctx, gate_run) -> None:
    """A write-tests job that edits the code under test fails the diff policy."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]))
    (calc_repo / "tests/test_stats.py").write_text(REAL_TESTS)
    stats = calc_repo / "calc/stats.py"
    stats.write_text(stats.read_text() + "\n\nVERSION = 2\n")
    results = run.check("diff-policy")
    assert "[non-test-files] calc/stats.py: not a test file" in results["diff-policy"].offending


def test_no_coverage_gain_fails(calc_repo: Path, make_ctx, gate_run) -> None:
    """Tests for an already-covered module do not raise target coverage and fail the coverage gate."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/core.py"]))
    (calc_repo / "tests/test_more_core.py").write_text(
        "from calc.core import add\n\n\ndef test_add_negative():\n    assert add(-1, -1) == -2\n"
    )
    results = run.check("coverage")
    assert results["coverage"].verdict == GateVerdict.FAIL
    assert results["coverage"].after["gain"] == 0.0


def test_weakened_test_is_rejected(calc_repo: Path, make_ctx, gate_run) -> None:
    """Dropping an assertion from an existing test counts as weakening it and fails the diff policy."""
    run = gate_run(make_ctx(calc_repo, kind="write-tests", paths=["calc/stats.py"]), "diff-policy")
    (calc_repo / "tests/test_stats.py").write_text(REAL_TESTS)
    core_tests = calc_repo / "tests/test_calc_core.py"
    core_tests.write_text(core_tests.read_text().replace("assert divide(6, 3) == 2", "divide(6, 3)"))
    results = run.check()
    assert results["diff-policy"].offending == [
        "[weaken-tests] tests/test_calc_core.py:8 test_divide: 1 -> 0 assertions"
    ]
