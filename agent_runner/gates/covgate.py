"""The coverage gate (write-tests): coverage of the target modules rises enough, measured by the test runs."""

from __future__ import annotations

from dataclasses import dataclass

from agent_runner.core.protocols import GateContext, Measurement
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.gates.coverage import min_gain, percent, summary_rows, target_files
from agent_runner.gates.pytest import SuiteRunner, TestReport, as_test_report
from agent_runner.gates.ruff import targets_of


@dataclass
class CoverageGate:
    """write-tests: target coverage rises by min_coverage_gain points or reaches target_coverage."""

    runner: SuiteRunner
    name: str = "coverage"

    def baseline(self, ctx: GateContext) -> TestReport:
        return self.runner.report(ctx)

    def check(self, ctx: GateContext, baseline: Measurement | None) -> GateResult:
        baseline, after = as_test_report(baseline), self.runner.report(ctx)
        if after.coverage is None or baseline.coverage is None:
            why = baseline.coverage_error or after.coverage_error or "the test command is not pytest"
            details = (
                f"no coverage report ({why}): write-tests needs a pytest test command and coverage.py"
                f" installed where the tests run\n{after.output}"
            )
            return GateResult(
                name=self.name, verdict=GateVerdict.ERROR, command=after.command, details=details
            )
        targets = targets_of(ctx)
        before_files, after_files = (
            target_files(baseline.coverage, targets),
            target_files(after.coverage, targets),
        )
        before, now = percent(before_files), percent(after_files)
        gain, goal = min_gain(ctx), ctx.task.target_coverage
        is_ok = now - before >= gain - 1e-9 or (goal is not None and now >= goal)
        want = f"+{gain:g} points" + (f" or {goal:g}%" if goal is not None else "")
        low = [
            f"{r['file']}: {r['percent']}% (missing lines {r['missing_lines']})"
            for r in summary_rows(after_files)
        ]
        return GateResult(
            name=self.name,
            verdict=GateVerdict.PASS if is_ok else GateVerdict.FAIL,
            command=after.command,
            exit_code=after.exit_code,
            before={"percent": round(before, 2)},
            after={"percent": round(now, 2), "gain": round(now - before, 2)},
            details=f"target coverage {before:.1f}% -> {now:.1f}% (needed {want})",
            offending=[] if is_ok else low[:20],
        )
