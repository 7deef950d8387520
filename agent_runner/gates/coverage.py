"""The coverage gate (write-tests): coverage of the target modules before and after, via pytest-cov."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from agent_runner.gates.ruff import in_paths, targets_of
from agent_runner.gates.testfiles import is_test_file
from agent_runner.protocols import GateContext
from agent_runner.result import GateResult, GateVerdict

if TYPE_CHECKING:
    from agent_runner.gates.pytest import SuiteRunner, TestReport

DEFAULT_MIN_GAIN = 5.0


@dataclass(frozen=True)
class FileCoverage:
    """Statement coverage of one file."""

    statements: int
    covered: int
    executed: frozenset[int]
    missing: tuple[int, ...]


def cov_sources(targets: list[str]) -> list[str]:
    """Return the folders to measure for `targets` (a file's parent folder)."""
    sources = []
    for target in targets:
        pure = PurePosixPath(target.strip("/") or ".")
        source = str(pure.parent) if pure.suffix == ".py" else str(pure)
        if source not in sources:
            sources.append(source)
    return sources


def cov_args(targets: list[str], json_path: Path) -> list[str]:
    """Return the pytest-cov options that write a JSON report of the targets' folders."""
    return [*(f"--cov={s}" for s in cov_sources(targets)), f"--cov-report=json:{json_path}"]


def read_coverage(json_path: Path) -> dict[str, FileCoverage] | None:
    """Parse coverage.py's JSON report into per-file coverage; None when there is no report."""
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    files: dict[str, FileCoverage] = {}
    for name, info in (data.get("files") or {}).items():
        summary = info.get("summary") or {}
        files[PurePosixPath(name).as_posix().removeprefix("./")] = FileCoverage(
            statements=int(summary.get("num_statements", 0)),
            covered=int(summary.get("covered_lines", 0)),
            executed=frozenset(info.get("executed_lines") or ()),
            missing=tuple(info.get("missing_lines") or ()),
        )
    return files


def target_files(files: dict[str, FileCoverage], targets: list[str]) -> dict[str, FileCoverage]:
    """Return the measured non-test files inside the targets."""
    return {f: c for f, c in files.items() if in_paths(f, targets) and not is_test_file(f)}


def percent(files: dict[str, FileCoverage]) -> float:
    """Return statement coverage in percent over `files` (100 when there are no statements)."""
    statements = sum(c.statements for c in files.values())
    return 100.0 * sum(c.covered for c in files.values()) / statements if statements else 100.0


def summary_rows(files: dict[str, FileCoverage]) -> list[dict[str, object]]:
    """Return per-file coverage rows for prompts: file, percent, missing lines."""
    return [
        {"file": f, "percent": round(percent({f: c}), 1), "missing_lines": list(c.missing)}
        for f, c in sorted(files.items())
    ]


@dataclass
class CoverageGate:
    """write-tests: target coverage rises by min_coverage_gain points or reaches target_coverage."""

    runner: SuiteRunner
    name: str = "coverage"

    def baseline(self, ctx: GateContext) -> TestReport:
        return self.runner.report(ctx)

    def check(self, ctx: GateContext, baseline: TestReport) -> GateResult:
        after = self.runner.report(ctx)
        if after.coverage is None or baseline.coverage is None:
            details = (
                "no coverage report: write-tests needs a pytest test command and pytest-cov installed where"
                f" the tests run\n{after.output}"
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


def min_gain(ctx: GateContext) -> float:
    """Return the required gain: the task's, but never below the config floor unless overrides are allowed."""
    floor = float(ctx.settings.get("min_coverage_gain", 0.0))
    task_gain = ctx.task.min_coverage_gain
    if task_gain < floor and not ctx.settings.get("allow_gate_override", False):
        return floor
    return task_gain
