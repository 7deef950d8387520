"""`sweep tests`: the repo's tests run once with coverage in a scratch checkout; a write-tests task per module
under the line, the biggest gap first.

The tests are the repo's own code at its base commit, run on this machine outside any sandbox (as the user
would run them), with the coverage plugin the write-tests gate uses (gates/covplugin.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent_runner.config.runner import RunnerConfig, gate_settings
from agent_runner.core.errors import ConfigError
from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task, TaskKind
from agent_runner.gates.command import gate_env, tail
from agent_runner.gates.coverage import FileCoverage, percent
from agent_runner.gates.pytest import TestReport, is_pytest, run_tests
from agent_runner.repo.git import Checkout
from agent_runner.repo.workspace import copy_files, run_setup
from agent_runner.sweeps.plan import (
    PlannedTask,
    SweepKind,
    SweepPlan,
    by_gain,
    distinct_ids,
    left_out_note,
    line_ranges,
    nameable,
    require_paths,
    shown,
    stable_id,
)
from agent_runner.sweeps.scratch import scratch_checkout

DEFAULT_BELOW = 80.0
MAX_LINES_TEXT = 4_000
# Files a whole-repo sweep leaves out (packaging and task scripts, docs, examples): name them to include them.
SKIPPED_FILES = frozenset({"setup.py", "noxfile.py", "fabfile.py", "tasks.py", "conftest.py"})
SKIPPED_DIRS = frozenset({"docs", "doc", "examples", "example", "bench", "benchmarks", "scripts"})


@dataclass(frozen=True)
class TestsOptions:
    """What `sweep tests` measures: the paths, and the coverage line in percent."""

    __test__ = False
    paths: tuple[str, ...] = (".",)
    below: float = DEFAULT_BELOW


def sweep_tests(
    root: Path, config: RunnerConfig, options: TestsOptions, *, base: str | None = None
) -> SweepPlan:
    """Run the repo's tests with coverage on its base commit (a scratch checkout) and return the plan."""
    with scratch_checkout(root, base=base) as checkout:
        report = measure_coverage(root, checkout, config, options.paths)
        coverage = report.coverage or {}
        out = {name for name in coverage if not nameable(checkout.path, name)}
        left_out = tuple(sorted(shown(checkout.path, name) for name in out))
    kept = {name: cov for name, cov in coverage.items() if name not in out}
    return plan_tests(kept, options, n_failed=len(report.failed), left_out=left_out)


def measure_coverage(
    root: Path, checkout: Checkout, config: RunnerConfig, paths: Sequence[str]
) -> TestReport:
    """Run setup, then the tests with the coverage plugin over `paths`; ConfigError without coverage."""
    if not is_pytest(config.test):
        raise ConfigError(f"`sweep tests` measures coverage with pytest; the test command is {config.test!r}")
    require_paths(checkout.path, paths)
    copy_files(str(root), checkout.path, list(config.copy_files))
    run_setup(list(config.setup), checkout.path, gate_env())
    task = Task(id="sweep-tests", kind=TaskKind.WRITE_TESTS, paths=list(paths))
    ctx = GateContext(checkout.path, task, checkout.base_commit, config.test, gate_settings(config))
    report = run_tests(ctx, coverage_of=list(paths))
    if report.coverage is None and report.duration_s >= ctx.settings.test_timeout_s:
        raise ConfigError(
            f"the test run timed out after {ctx.settings.test_timeout_s:g} s (gates.test_timeout_s); raise "
            f"it, or sweep fewer PATHS, or fix the test that hangs. Output:\n{tail(report.output)}"
        )
    if report.coverage is None:
        raise ConfigError(
            f"the test run measured no coverage ({report.coverage_error or 'no report'}); "
            f"`{config.test}` must run pytest with coverage.py installed. Output:\n{tail(report.output)}"
        )
    return report


def plan_tests(
    coverage: dict[str, FileCoverage],
    options: TestsOptions,
    *,
    n_failed: int = 0,
    left_out: tuple[str, ...] = (),
) -> SweepPlan:
    """Return one write-tests task per measured module under `options.below` percent."""
    kept = {
        name: cov for name, cov in coverage.items() if cov.statements and not _skipped(name, options.paths)
    }
    planned = [
        _tests_task(name, cov, options.below)
        for name, cov in sorted(kept.items())
        if percent({name: cov}) < options.below
    ]
    notes = [
        "the tests ran on this machine outside any sandbox: the repo's own code at its base commit",
        *([f"{n_failed} test(s) fail on the base commit; write-tests reports them, it does not hold them "
           "against the agent"] if n_failed else []),
        *([left_out_note(left_out, what="coverage")] if left_out else []),
    ]  # fmt: skip
    figures = {"modules": len(kept), "coverage": round(percent(kept), 1)}
    return SweepPlan(SweepKind.TESTS, by_gain(distinct_ids(planned)), tuple(notes), options.paths, figures)


def _skipped(name: str, scope: Sequence[str]) -> bool:
    """Whether a whole-repo sweep leaves `name` out (see SKIPPED_FILES, SKIPPED_DIRS)."""
    if tuple(scope) != (".",):
        return False
    parts = PurePosixPath(name).parts
    return (len(parts) == 1 and parts[0] in SKIPPED_FILES) or bool(SKIPPED_DIRS & set(parts[:-1]))


def _tests_task(name: str, cov: FileCoverage, below: float) -> PlannedTask:
    now = percent({name: cov})
    need = max(1, math.ceil(below * cov.statements / 100 - 1e-9) - cov.covered)
    lines = line_ranges(cov.missing)
    lines = lines if len(lines) <= MAX_LINES_TEXT else lines[:MAX_LINES_TEXT].rsplit(",", 1)[0] + ", ..."
    body = "\n".join([
        f"Write tests for {name}: the test suite runs {cov.covered} of its {cov.statements} statements "
        f"({now:.1f}%). Reach {below:g}% ({need} more statements) or gain at least min_coverage_gain points.",
        "", f"Lines no test runs: {lines}",
    ])  # fmt: skip
    title = f"Cover {name}: {now:.0f}% -> {below:g}%"
    task = Task(
        id=stable_id("tests", name), kind=TaskKind.WRITE_TESTS, title=title, instructions=body, paths=[name],
        priority=need, target_coverage=below, labels=[SweepKind.TESTS.label],
    )  # fmt: skip
    return PlannedTask(task, covers=name, gain=need, summary=f"{now:.1f}%, {need} statements to go")
