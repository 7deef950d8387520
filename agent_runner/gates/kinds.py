"""Job kinds: a prompt template, a deterministic pre-step, and the gates that decide acceptance."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent_runner.core.errors import ConfigError
from agent_runner.core.protocols import Gate, GateContext
from agent_runner.gates.command import run_command
from agent_runner.gates.coverage import min_gain, percent, summary_rows, target_files
from agent_runner.gates.covgate import CoverageGate
from agent_runner.gates.diff import DiffPolicyGate, NonEmptyDiffGate, allowed
from agent_runner.gates.mutants import MutationGate
from agent_runner.gates.pytest import SuiteRunner, TestsGate
from agent_runner.gates.ruff import (
    ElsewhereLintGate,
    LintRunner,
    TargetLintGate,
    TouchedLintGate,
    extend_select,
    inside_only,
    ruff_argv,
    run_ruff,
    targets_of,
)
from agent_runner.gates.workdiff import git

MAX_REVIEW_DIFF = 60_000


@dataclass(frozen=True)
class PreStep:
    """Deterministic work done before the agent: variables for its prompt, and whether it is needed at all."""

    prompt_vars: dict[str, object] = field(default_factory=dict)
    needs_agent: bool = True
    summary: str = ""


class JobKind:
    """A kind of job; one instance serves one job (its gates share test and lint runs)."""

    template: str = ""
    commits: bool = True
    acceptance: tuple[str, ...] = ()
    gate_names: tuple[str, ...] = ()  # what `build_gates` returns, by name: a landing checks the records

    def __init__(self) -> None:
        self._gates: list[Gate] | None = None

    def gates(self, ctx: GateContext) -> list[Gate]:
        """Return this job's gates (built once, so baseline and check share their measurements)."""
        if self._gates is None:
            self._gates = self.build_gates(ctx)
        return self._gates

    def build_gates(self, ctx: GateContext) -> list[Gate]:
        """Return new gates for this kind."""
        return []

    def prestep(self, ctx: GateContext) -> PreStep:
        """Do the deterministic part of the job and return what the agent needs to know."""
        return PreStep(self.common_vars(ctx))

    def common_vars(self, ctx: GateContext) -> dict[str, object]:
        """Return prompt variables every kind provides: targets, acceptance rules, waivers in force."""
        return {
            "targets": targets_of(ctx),
            "acceptance": list(self.acceptance),
            "allowed": sorted(allowed(ctx)),
        }


class FixLintKind(JobKind):
    """fix-lint: `ruff check --fix` first; the agent gets what remains."""

    template = "fix-lint.md.j2"
    acceptance = (
        "the target paths have 0 ruff violations (strictly fewer with allow_partial)",
        "no new ruff violation anywhere else (matched by file, rule and message)",
        "every test that passed before still passes",
        "the diff policy holds (no noqa, no config edits, no deleted or skipped tests)",
    )

    gate_names = ("lint-targets", "lint-elsewhere", "tests", "diff-policy")

    def build_gates(self, ctx: GateContext) -> list[Gate]:
        lint = LintRunner()
        return [TargetLintGate(lint), ElsewhereLintGate(lint), TestsGate(SuiteRunner()), DiffPolicyGate()]

    def prestep(self, ctx: GateContext) -> PreStep:
        # ruff reads the checkout's config (and a fix round's base is the agent's own branch): sandboxed.
        targets, sandbox, extra = targets_of(ctx), ctx.sandbox, extend_select(ctx.task)
        before = run_ruff(ctx.checkout, targets, sandbox=sandbox, extra=extra)
        run_ruff(ctx.checkout, targets, fix=True, sandbox=sandbox, extra=extra)
        is_formatted = bool(ctx.task.format or ctx.settings.format)
        if is_formatted and (inside := inside_only(ctx.checkout, targets)):
            run_command([*ruff_argv(), "format", "--", *inside], cwd=ctx.checkout, sandbox=sandbox)
        left = run_ruff(ctx.checkout, targets, sandbox=sandbox, extra=extra)
        n_fixed = max(0, len(before.violations) - len(left.violations))
        rows = [v.as_dict() for v in left.violations]
        summary = f"ruff --fix{' and ruff format' if is_formatted else ''} fixed {n_fixed}; {len(rows)} left"
        prompt_vars = {
            **self.common_vars(ctx),
            "violations": rows,
            "violations_text": "\n".join(str(v) for v in left.violations),
            "n_violations": len(rows),
            "n_fixed": n_fixed,
            "lint_error": left.error,
        }
        return PreStep(prompt_vars, needs_agent=bool(rows or left.error), summary=summary)


class WriteTestsKind(JobKind):
    """write-tests: the agent adds tests; coverage must rise and the new tests must kill a mutant."""

    template = "write-tests.md.j2"
    acceptance = (
        "only test files change or are added",
        "the whole test suite passes (tests already failing before are reported, not held against you)",
        "coverage of the targets rises by min_coverage_gain points or reaches target_coverage",
        "no test is deleted, skipped or weakened",
        "the new tests fail on at least one of >= 5 simple mutants of the target code "
        "(flipped comparison, changed constant, removed statement, return None)",
    )

    def __init__(self) -> None:
        super().__init__()
        self.suite = SuiteRunner(with_coverage=True)

    gate_names = ("diff-policy", "tests", "coverage", "mutants")

    def build_gates(self, ctx: GateContext) -> list[Gate]:
        return [
            DiffPolicyGate(tests_only=True),
            TestsGate(self.suite, require_green=True),
            CoverageGate(self.suite),
            MutationGate(self.suite),
        ]

    def prestep(self, ctx: GateContext) -> PreStep:
        report = self.suite.report(ctx)
        files = target_files(report.coverage or {}, targets_of(ctx))
        prompt_vars = {
            **self.common_vars(ctx),
            "coverage": summary_rows(files),
            "coverage_before": round(percent(files), 1) if report.coverage is not None else None,
            "min_coverage_gain": min_gain(ctx),
            "target_coverage": ctx.task.target_coverage,
        }
        return PreStep(prompt_vars, summary=f"baseline coverage {prompt_vars['coverage_before']}%")


class ChangeKind(JobKind):
    """change: free instructions; non-empty diff, no worse lint where touched, no test regressions."""

    template = "change.md.j2"
    acceptance = (
        "the diff is not empty",
        "ruff on the files you touch is not worse than before",
        "every test that passed before still passes",
        "the diff policy holds (no noqa, no config edits, no deleted or skipped tests)",
    )

    gate_names = ("non-empty-diff", "lint-touched", "tests", "diff-policy")

    def build_gates(self, ctx: GateContext) -> list[Gate]:
        return [NonEmptyDiffGate(), TouchedLintGate(LintRunner()), TestsGate(SuiteRunner()), DiffPolicyGate()]


class ReviewKind(JobKind):
    """review: read-only; the agent's summary holds the findings; nothing is committed."""

    template = "review.md.j2"
    commits = False
    acceptance = ("read-only: no file may change; the findings are your answer",)

    def prestep(self, ctx: GateContext) -> PreStep:
        diff = git(ctx.checkout, "diff", "--no-color", f"{ctx.base_commit}...HEAD", check=False)
        if len(diff) > MAX_REVIEW_DIFF:
            diff = diff[:MAX_REVIEW_DIFF] + "\n... (diff cut; run git diff to see the rest)"
        return PreStep({**self.common_vars(ctx), "diff": diff, "base": ctx.base_commit})


KINDS: dict[str, type[JobKind]] = {
    "fix-lint": FixLintKind,
    "write-tests": WriteTestsKind,
    "change": ChangeKind,
    "review": ReviewKind,
}


def get_job_kind(kind: str) -> JobKind:
    """Return a fresh JobKind for a task kind (fix-lint, write-tests, change, review)."""
    try:
        return KINDS[str(kind)]()
    except KeyError:
        raise ConfigError(f"unknown task kind '{kind}'; known kinds: {', '.join(KINDS)}") from None
