"""The test gates: the repo's test command with our outcome plugin (or junit XML): test ids by outcome."""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import agent_runner.gates.baseline as baseline_cache
from agent_runner.core.protocols import GateContext, Measurement
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.gates.command import CommandResult, gate_env, run_command, tail
from agent_runner.gates.coverage import (
    PLUGIN,
    FileCoverage,
    changed_test_modules,
    file_coverage,
    import_coverage_meanwhile,
    measured_files,
    plugin_setup,
    read_coverage,
)
from agent_runner.gates.files import GateFileError
from agent_runner.gates.outcomes import IdSource, outcome_args, plugin_failed, read_ids
from agent_runner.gates.ruff import targets_of
from agent_runner.gates.workdiff import tree_id

NO_TESTS_EXIT = 5
MAX_OFFENDING = 40
NO_PLUGINS = (
    "pytest could not import the runner's plugins from PYTHONPATH (does the test command replace it?)"
)


@dataclass(frozen=True)
class TestReport:
    """One run of the test command: exit code, test ids by outcome, and coverage when asked for."""

    __test__ = False
    command: str
    exit_code: int
    passed: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    skipped: frozenset[str] = frozenset()
    has_ids: bool = False
    ids_from: IdSource = IdSource.NONE
    output: str = ""
    duration_s: float = 0.0
    coverage: dict[str, FileCoverage] | None = None
    coverage_error: str = ""
    traced_only: tuple[str, ...] | None = None
    is_cached: bool = False
    unreadable: str = ""  # a report the agent's code replaced (a link, a FIFO, a huge file): the run fails

    @property
    def is_green(self) -> bool:
        """Whether the command succeeded (no tests collected counts as success) with no failing test."""
        return self.exit_code in (0, NO_TESTS_EXIT) and not self.failed

    def counts(self) -> dict[str, float]:
        """Return passed/failed counts (or the exit code for commands without ids)."""
        if not self.has_ids:
            return {"exit_code": self.exit_code}
        return {"passed": len(self.passed), "failed": len(self.failed)}


def as_test_report(baseline: Measurement | None) -> TestReport:
    """Return a test gate's baseline as the TestReport it is (another gate's baseline is a bug: TypeError)."""
    if not isinstance(baseline, TestReport):
        raise TypeError(f"a test gate's baseline is a TestReport, not {type(baseline).__name__}")
    return baseline


def is_pytest(command: str) -> bool:
    """Return whether the test command runs pytest (so junit and coverage options can be added)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return any(PurePosixPath(w).name in ("pytest", "py.test") for w in words)


def scratch_parent(ctx: GateContext) -> Path | None:
    """Return where a gate's scratch folder goes: in .git under a sandbox (only the checkout is shared).

    That `.git` is the agent's: it is used only as a real folder, never through a symlink it put there.
    """
    is_sandboxed = ctx.sandbox is not None
    dot_git = ctx.checkout / ".git"
    return dot_git if is_sandboxed and dot_git.is_dir() and not dot_git.is_symlink() else None


def run_tests(
    ctx: GateContext,
    *,
    coverage_of: list[str] | None = None,
    paths: list[str] | None = None,
    traced_only: list[str] | None = None,
    base_coverage: dict[str, FileCoverage] | None = None,
    ids_from: IdSource = IdSource.PLUGIN,
) -> TestReport:
    """Run the repo's test command in the checkout (pytest: with our outcome and, if asked, coverage plugins).

    `coverage_of` lists the target paths to measure; `traced_only` limits tracing to those test files,
    whose lines then join `base_coverage` (see changed_test_modules). Test ids come from our plugin, or
    from junit XML with `ids_from=IdSource.JUNIT` or when pytest cannot load the plugin.
    """
    command = ctx.test_command
    timeout = ctx.settings.test_timeout_s
    if not is_pytest(command):
        sandbox = ctx.sandbox
        env = gate_env(sandboxed=sandbox is not None, withheld=ctx.settings.withheld_env)
        result = run_command(command, cwd=ctx.checkout, env=env, timeout_s=timeout, sandbox=sandbox)
        return TestReport(command, result.exit_code, output=tail(result.output), duration_s=result.duration_s)
    if base_coverage is not None:
        import_coverage_meanwhile()
    with tempfile.TemporaryDirectory(prefix="gate-", dir=scratch_parent(ctx)) as tmp:
        scratch = Path(tmp)
        result = _run_pytest(ctx, scratch, ids_from, coverage_of, traced_only, paths, timeout)
        cov, cov_error = None, ""
        if ids_from is IdSource.PLUGIN and not result.timed_out and plugin_failed(scratch, result.output):
            ids_from = IdSource.JUNIT  # neither of our plugins loads here: a rerun with junit ids only
            result = _run_pytest(ctx, scratch, ids_from, None, None, paths, timeout)
            cov_error = NO_PLUGINS if coverage_of is not None else ""
        elif coverage_of is not None:
            cov, cov_error = read_coverage(scratch, root=ctx.checkout, base=base_coverage)
        try:
            ids = read_ids(scratch, ids_from)
        except GateFileError as exc:
            why = f"the test run's outcome report cannot be read: {exc}"
            return TestReport(
                command, -1, output=f"{why}\n{tail(result.output)}", duration_s=result.duration_s,
                coverage_error=why, unreadable=why,
            )  # fmt: skip
    passed, failed, skipped = ids or (set(), set(), set())
    return TestReport(
        command=command,
        exit_code=result.exit_code,
        passed=frozenset(passed),
        failed=frozenset(failed),
        skipped=frozenset(skipped),
        has_ids=ids is not None,
        ids_from=ids_from if ids is not None else IdSource.NONE,
        output=tail(result.output),
        duration_s=result.duration_s,
        coverage=cov,
        coverage_error=cov_error,
        traced_only=tuple(traced_only) if traced_only is not None else None,
    )


def _run_pytest(
    ctx: GateContext,
    scratch: Path,
    ids_from: IdSource,
    coverage_of: list[str] | None,
    traced_only: list[str] | None,
    paths: list[str] | None,
    timeout: float,
) -> CommandResult:
    """Run pytest once with the options that record outcomes (and coverage) into `scratch`."""
    extra, env = outcome_args(scratch, ids_from)
    extra = ["-p", "no:cacheprovider", *extra]
    env["COVERAGE_FILE"] = str(scratch / ".coverage")  # a repo's own --cov writes here
    if coverage_of is not None:
        files = measured_files(ctx.checkout, coverage_of)
        env |= plugin_setup(scratch, ctx.checkout, files, only=traced_only)
        extra += ["-p", PLUGIN]
    full = f"{ctx.test_command} {shlex.join(extra)}" + (f" {shlex.join(paths)}" if paths else "")
    sandbox = ctx.sandbox
    env = gate_env(env, sandboxed=sandbox is not None, withheld=ctx.settings.withheld_env)
    return run_command(full, cwd=ctx.checkout, env=env, timeout_s=timeout, sandbox=sandbox)


def report_to_json(report: TestReport) -> dict[str, Any]:
    """Return a test report as JSON data (for the baseline cache)."""
    cov = report.coverage
    return {
        "command": report.command,
        "exit_code": report.exit_code,
        "ids": {k: sorted(getattr(report, k)) for k in ("passed", "failed", "skipped")},
        "has_ids": report.has_ids,
        "ids_from": report.ids_from.value,
        "output": report.output,
        "duration_s": report.duration_s,
        "coverage": None
        if cov is None
        else {f: [sorted(c.executed), sorted(c.missing)] for f, c in cov.items()},
    }


def report_from_json(data: dict[str, Any]) -> TestReport:
    """Return the test report report_to_json saved, marked as cached."""
    cov = data.get("coverage")
    ids = data["ids"]
    return TestReport(
        command=data["command"],
        exit_code=int(data["exit_code"]),
        passed=frozenset(ids["passed"]),
        failed=frozenset(ids["failed"]),
        skipped=frozenset(ids["skipped"]),
        has_ids=bool(data["has_ids"]),
        ids_from=IdSource(data["ids_from"]),
        output=data["output"],
        duration_s=float(data["duration_s"]),
        coverage=None
        if cov is None
        else {f: file_coverage(set(run) | set(miss), set(run)) for f, (run, miss) in cov.items()},
        is_cached=True,
    )


@dataclass
class SuiteRunner:
    """Runs the test suite once per state of the working tree (with coverage when a gate needs it)."""

    with_coverage: bool = False
    _cache: dict[str, TestReport] = field(default_factory=dict)
    _first: str = ""

    def report(self, ctx: GateContext) -> TestReport:
        """Return the test report for the checkout as it is now (the first one is the baseline)."""
        key = tree_id(ctx.checkout)
        if key not in self._cache:
            self._cache[key] = self._run(ctx, key) if self._first else self._baseline(ctx, key)
            self._first = self._first or key
        return self._cache[key]

    def _baseline(self, ctx: GateContext, key: str) -> TestReport:
        """Measure the baseline, or reuse this machine's measurement of the same tree and settings."""
        folder = baseline_cache.cache_dir(ctx)
        if folder is None:
            return self._run(ctx, key)
        name = baseline_cache.cache_key(ctx, key, coverage_of=targets_of(ctx) if self.with_coverage else None)
        if (entry := baseline_cache.load(folder, name)) is not None:
            return report_from_json(entry)
        report = self._run(ctx, key)
        if report.has_ids and (report.coverage is not None or not self.with_coverage):
            baseline_cache.store(folder, name, report_to_json(report))
        return report

    def _run(self, ctx: GateContext, key: str) -> TestReport:
        base = self._cache.get(self._first)
        # Later runs take their ids from where the baseline's came (a baseline without our plugin: junit).
        ids_from = IdSource.JUNIT if base is not None and base.ids_from is IdSource.JUNIT else IdSource.PLUGIN
        if not self.with_coverage:
            return run_tests(ctx, ids_from=ids_from)
        only = changed_test_modules(ctx.checkout, self._first, key) if base and base.coverage else None
        base_coverage = base.coverage if only is not None and base is not None else None
        return run_tests(
            ctx, coverage_of=targets_of(ctx), traced_only=only, base_coverage=base_coverage, ids_from=ids_from
        )


@dataclass
class TestsGate:
    """Every test that passed at baseline still passes; with `require_green`, the whole suite passes too."""

    __test__ = False
    runner: SuiteRunner
    require_green: bool = False
    name: str = "tests"

    def baseline(self, ctx: GateContext) -> TestReport:
        return self.runner.report(ctx)

    def check(self, ctx: GateContext, baseline: Measurement | None) -> GateResult:
        baseline, after = as_test_report(baseline), self.runner.report(ctx)
        if after.unreadable:
            return self._result(after, baseline, False, after.unreadable, [])
        if not (after.has_ids and baseline.has_ids):
            return self._by_exit_code(baseline, after)
        lost = sorted(baseline.passed - after.passed)
        new_failures = sorted(after.failed - baseline.failed)
        is_ok = not lost and not (self.require_green and new_failures)
        details = f"{len(lost)} test(s) that passed at baseline no longer pass"
        if self.require_green:
            details += f"; {len(new_failures)} new failing test(s)"
        if after.failed & baseline.failed:
            details += f"; {len(after.failed & baseline.failed)} already failing at baseline"
        offending = [f"{t} (passed at baseline)" for t in lost]
        if self.require_green:
            offending += [f"{t} (fails)" for t in new_failures if t not in lost]
        return self._result(after, baseline, is_ok, details, offending)

    def _by_exit_code(self, baseline: TestReport, after: TestReport) -> GateResult:
        if baseline.exit_code not in (0, NO_TESTS_EXIT):
            return self._result(
                after, baseline, True, "baseline already failing; no per-test ids to compare", []
            )
        is_ok = after.exit_code in (0, NO_TESTS_EXIT)
        details = "test command " + ("passes" if is_ok else f"fails (exit {after.exit_code})")
        return self._result(after, baseline, is_ok, details, [])

    def _result(
        self, after: TestReport, baseline: TestReport, is_ok: bool, details: str, offending: list[str]
    ) -> GateResult:
        if baseline.is_cached:
            details += " (baseline reused from this machine's cache)"
        if not is_ok and after.output:
            details += "\n" + after.output
        return GateResult(
            name=self.name,
            verdict=GateVerdict.PASS if is_ok else GateVerdict.FAIL,
            command=after.command,
            exit_code=after.exit_code,
            before=baseline.counts(),
            after=after.counts(),
            details=details,
            offending=offending[:MAX_OFFENDING],
        )
