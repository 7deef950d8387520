"""Mutants, test reports and gate reports on small inputs and real subprocesses."""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.gates.mutate import apply_mutant, choose_mutants, find_mutants
from agent_runner.gates.pytest import SuiteRunner, TestsGate, is_pytest
from agent_runner.gates.report import failure_reason, is_accepted, render_report
from agent_runner.gates.testfiles import find_test_functions

STATS = (Path(__file__).resolve().parents[1] / "fixtures/calc_project/calc/stats.py").read_text()


def test_mutants_cover_every_operator_and_parse() -> None:
    """The fixture yields all four operators; each chosen mutant parses and differs from the original."""
    candidates = find_mutants(STATS, "calc/stats.py")
    assert {m.operator for m in candidates} == {
        "flip-comparison",
        "change-constant",
        "remove-statement",
        "return-none",
    }
    chosen = choose_mutants(candidates, limit=8)
    assert len(chosen) == 8 and len({m.operator for m in chosen[:4]}) == 4
    for mutant in chosen:
        mutated = apply_mutant(STATS, mutant)
        ast.parse(mutated)
        assert ast.dump(ast.parse(mutated)) != ast.dump(ast.parse(STATS))


def test_module_level_code_is_never_mutated() -> None:
    """Constants and statements outside functions stay as they are, so mutants still import."""
    assert find_mutants("X = 1\nif X > 0:\n    Y = 2\n", "m.py") == []


def test_test_functions_find_methods_and_asserts() -> None:
    """Test functions and methods are found with their spans; constant asserts do not count as asserting."""
    source = (
        "def test_a():\n    assert True\n\n\nclass TestB:\n    def test_c(self):\n        assert f() == 1\n"
    )
    found = {f.node: f.asserts for f in find_test_functions(source)}
    assert found == {"test_a": False, "TestB::test_c": True}


def test_non_pytest_command_is_judged_by_exit_code(tmp_path: Path, make_ctx, calc_repo: Path) -> None:
    """A test command that is not pytest has no test ids; the gate compares exit codes instead."""
    ctx = make_ctx(calc_repo, kind="change")
    ctx = type(ctx)(
        ctx.checkout, ctx.task, ctx.base_commit, f"{sys.executable} -c 'import calc.core'", ctx.settings
    )
    assert not is_pytest(ctx.test_command)
    gate = TestsGate(SuiteRunner())
    baseline = gate.baseline(ctx)
    assert gate.check(ctx, baseline).verdict == GateVerdict.PASS
    (calc_repo / "calc/core.py").write_text("raise SystemExit(3)\n")
    result = gate.check(ctx, baseline)
    assert result.verdict == GateVerdict.FAIL and result.after == {"exit_code": 3}


def test_repo_without_tests_passes(make_ctx, calc_repo: Path, commit) -> None:
    """pytest's 'no tests collected' exit code counts as a green suite with no ids."""
    shutil.rmtree(calc_repo / "tests")
    commit(calc_repo, "no tests")
    ctx = make_ctx(calc_repo, kind="change")
    gate = TestsGate(SuiteRunner())
    result = gate.check(ctx, gate.baseline(ctx))
    assert result.verdict == GateVerdict.PASS and result.after == {"passed": 0, "failed": 0}


def test_report_table_and_offending_lines() -> None:
    """The report shows one row per gate and the offending lines of failing gates only."""
    results = [
        GateResult(
            name="lint-targets", verdict=GateVerdict.PASS, before={"violations": 3}, after={"violations": 0}
        ),
        GateResult(
            name="diff-policy",
            verdict=GateVerdict.FAIL,
            details="1 policy violation(s)",
            offending=["[noqa] a.py:3: x = 1  # noqa"],
        ),
    ]
    text = render_report(results, title="Gates")
    assert "| lint-targets | violations 3 | violations 0 | pass |" in text
    assert "| diff-policy | - | - | **fail** |" in text
    assert "[noqa] a.py:3" in text and "### lint-targets" not in text
    assert not is_accepted(results)
    assert failure_reason(results) == "diff-policy: 1 policy violation(s)"


def test_scratch_copy_skips_git_and_links_environments(tmp_path: Path) -> None:
    """The mutants' scratch copy leaves out .git and caches and symlinks a .venv instead of copying it."""
    from agent_runner.gates.mutants import make_scratch

    checkout = tmp_path / "checkout"
    for name in (".venv/bin/python", ".git/HEAD", "pkg/__pycache__/a.pyc", "pkg/a.py"):
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("x")
    make_scratch(checkout, tmp_path / "scratch")
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == [".venv", "pkg"]
    assert (tmp_path / "scratch/.venv").is_symlink()
    assert [p.name for p in (tmp_path / "scratch/pkg").iterdir()] == ["a.py"]
