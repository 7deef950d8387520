"""The lint gates: ruff with the repo's own config, on the targets and on the whole repo."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.core.protocols import GateContext, Measurement, Sandbox
from agent_runner.core.result import GateResult, GateVerdict
from agent_runner.core.task import Task
from agent_runner.gates.command import DEFAULT_TIMEOUT_S, CommandResult, run_command, tail
from agent_runner.gates.workdiff import show_files, tree_id, work_diff

try:
    from ruff import find_ruff_bin  # the ruff wheel beside the runner (~1 ms)
except ImportError:  # not installed as a package: ruff_argv looks on PATH
    find_ruff_bin = None

MAX_OFFENDING = 40
NO_TARGETS = "no path to lint lies inside the checkout (the others are dropped); ruff was not run"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    """One ruff finding, with the file relative to the checkout."""

    file: str
    line: int
    column: int
    rule: str
    message: str
    fixable: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity that survives edits elsewhere in the file: (file, rule, message), no line number."""
        return (self.file, self.rule, self.message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.rule} {self.message}"

    def as_dict(self) -> dict[str, str | int]:
        """Return the violation as plain data for prompts."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class LintReport:
    """The violations of one ruff run."""

    command: str
    exit_code: int
    violations: tuple[Violation, ...] = ()
    error: str = ""

    def within(self, paths: Sequence[str]) -> list[Violation]:
        """Return the violations inside any of `paths` (files or folders)."""
        return [v for v in self.violations if in_paths(v.file, paths)]

    def outside(self, paths: Sequence[str]) -> list[Violation]:
        """Return the violations outside all of `paths`."""
        return [v for v in self.violations if not in_paths(v.file, paths)]

    def per_file(self) -> Counter[str]:
        """Count violations per file."""
        return Counter(v.file for v in self.violations)

    def per_rule(self) -> Counter[str]:
        """Count violations per rule."""
        return Counter(v.rule for v in self.violations)


def is_inside(checkout: Path, path: str) -> bool:
    """Return whether `path`, taken relative to `checkout`, resolves inside it (symlinks followed)."""
    root = os.path.realpath(checkout)
    try:
        real = os.path.realpath(os.path.join(root, path))
    except ValueError:  # a NUL byte
        return False
    return real == root or real.startswith(root + os.sep)


def inside_only(checkout: Path, paths: Sequence[str]) -> list[str]:
    """Return the `paths` inside `checkout`; log each one dropped (the task file check refuses them)."""
    kept = []
    for path in paths:
        if is_inside(checkout, path):
            kept.append(path)
        else:
            log.warning("path %r dropped: it resolves outside the checkout %s", path, checkout)
    return kept


def in_paths(file: str, paths: Sequence[str]) -> bool:
    """Return whether a relative file lies in one of `paths` ('.' is everything)."""
    for path in paths:
        norm = path.strip("/").removeprefix("./")
        if norm in ("", ".") or file == norm or file.startswith(norm + "/"):
            return True
    return False


# No cache: ruff would write it wherever the checkout's config says (`cache-dir`), outside the sandbox too.
RUFF_OPTIONS = ("--output-format", "json", "--no-cache")


def ruff_argv() -> list[str]:
    """Return the command that runs the ruff installed beside the runner."""
    try:
        if find_ruff_bin is not None:
            return [str(find_ruff_bin())]
    except FileNotFoundError:
        pass
    found = shutil.which("ruff")
    return [found] if found else [sys.executable, "-m", "ruff"]


def run_ruff(
    checkout: Path,
    paths: Sequence[str] = (".",),
    *,
    fix: bool = False,
    force_exclude: bool = False,
    sandbox: Sandbox | None = None,
    extra: Sequence[str] = (),
) -> LintReport:
    """Run `ruff check --output-format json` (optionally with --fix) and return the remaining violations.

    With `force_exclude`, files the repo's ruff config excludes are skipped even when named explicitly.
    After the agent ran, ruff reads the config it may have written: the gates pass the agent's `sandbox`.
    `extra` options go before the paths (a sweep's or a task's `--extend-select`).
    """
    paths = inside_only(checkout, paths)
    if not paths:
        return LintReport("ruff check", -1, error=NO_TARGETS)
    options = [*(["--fix"] if fix else []), *(["--force-exclude"] if force_exclude else []), *extra]
    argv = [*ruff_argv(), "check", *RUFF_OPTIONS, *options, "--", *paths]
    result = run_command(argv, cwd=checkout, sandbox=sandbox)
    shown = "ruff check " + ("--fix " if fix else "") + " ".join(paths)
    return _report(shown, result, checkout)


def run_ruff_source(checkout: Path, path: str, source: str, *, sandbox: Sandbox | None = None) -> LintReport:
    """Lint `source` as if it were the file `path` of the checkout (its config, its excludes), via stdin."""
    argv = [*ruff_argv(), "check", *RUFF_OPTIONS, "--force-exclude", f"--stdin-filename={path}", "-"]
    shown = f"ruff check --stdin-filename {path}"
    result = run_command(argv, cwd=checkout, sandbox=sandbox, stdin_text=source)
    if result.timed_out:
        return LintReport(shown, -1, error=f"timed out after {DEFAULT_TIMEOUT_S:.0f} s")
    return _report(shown, result, checkout)


def _report(shown: str, result: CommandResult, checkout: Path) -> LintReport:
    try:
        rows = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return LintReport(shown, result.exit_code, error=tail(result.output))
    if result.exit_code not in (0, 1):
        return LintReport(shown, result.exit_code, error=tail(result.output))
    root = checkout.resolve()
    violations = sorted(
        {_violation(row, root) for row in rows}, key=lambda v: (v.file, v.line, v.column, v.rule)
    )
    return LintReport(shown, result.exit_code, tuple(violations))


def run_ruff_format(checkout: Path, paths: Sequence[str]) -> int:
    """Run `ruff format` on the paths inside the checkout and return its exit code (-1: none inside)."""
    paths = inside_only(checkout, paths)
    return run_command([*ruff_argv(), "format", "--", *paths], cwd=checkout).exit_code if paths else -1


def _violation(row: dict[str, Any], root: Path) -> Violation:
    path = Path(row.get("filename") or "")
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    loc = row.get("location") or {}
    return Violation(
        file=rel,
        line=int(loc.get("row") or 0),
        column=int(loc.get("column") or 0),
        rule=row.get("code") or "syntax-error",
        message=str(row.get("message", "")),
        fixable=bool(row.get("fix")) and (row.get("fix") or {}).get("applicability") == "safe",
    )


def new_violations(before: Iterable[Violation], after: Iterable[Violation]) -> list[Violation]:
    """Return violations in `after` beyond those in `before`, matched by (file, rule, message)."""
    budget = Counter(v.key for v in before)
    extra = []
    for v in after:
        if budget[v.key] > 0:
            budget[v.key] -= 1
        else:
            extra.append(v)
    return extra


def rule_counts(before: Iterable[Violation], after: Iterable[Violation]) -> str:
    """Return per-rule counts as `RULE before->after`, most frequent first."""
    n_before, n_after = Counter(v.rule for v in before), Counter(v.rule for v in after)
    rules = sorted(set(n_before) | set(n_after), key=lambda r: (-n_before[r] - n_after[r], r))
    return ", ".join(f"{r} {n_before[r]}->{n_after[r]}" for r in rules[:12])


def extend_select(task: Task) -> list[str]:
    """Return the ruff options for a task's own rules beside the repo's config (`lint_select`), or none."""
    return ["--extend-select", ",".join(task.lint_select)] if task.lint_select else []


def targets_of(ctx: GateContext) -> list[str]:
    """Return the task's target paths inside the checkout ('.' when it names none, [] when none is inside)."""
    return inside_only(ctx.checkout, ctx.task.paths) if ctx.task.paths else ["."]


@dataclass
class LintRunner:
    """Runs ruff once per state of the working tree and remembers the report."""

    _cache: dict[str, LintReport] = field(default_factory=dict)

    def report(self, ctx: GateContext) -> LintReport:
        """Return the lint report for the checkout as it is now (whole repo plus targets)."""
        key = tree_id(ctx.checkout)
        if key not in self._cache:
            paths = [".", *[p for p in targets_of(ctx) if p != "."]]
            self._cache[key] = run_ruff(
                ctx.checkout, paths, sandbox=ctx.sandbox, extra=extend_select(ctx.task)
            )
        return self._cache[key]


def as_lint_report(baseline: Measurement | None) -> LintReport:
    """Return a lint gate's baseline as the LintReport it is (another gate's baseline is a bug: TypeError)."""
    if not isinstance(baseline, LintReport):
        raise TypeError(f"a lint gate's baseline is a LintReport, not {type(baseline).__name__}")
    return baseline


def _error(name: str, report: LintReport) -> GateResult:
    details = f"ruff could not lint the repo (exit {report.exit_code}):\n{report.error}"
    return GateResult(
        name=name,
        verdict=GateVerdict.ERROR,
        command=report.command,
        exit_code=report.exit_code,
        details=details,
    )


@dataclass
class TargetLintGate:
    """fix-lint: the targets end with 0 violations (strictly fewer with allow_partial)."""

    runner: LintRunner
    name: str = "lint-targets"

    def baseline(self, ctx: GateContext) -> LintReport:
        return self.runner.report(ctx)

    def check(self, ctx: GateContext, baseline: Measurement | None) -> GateResult:
        baseline, after = as_lint_report(baseline), self.runner.report(ctx)
        if after.error or baseline.error:
            return _error(self.name, after if after.error else baseline)
        targets = targets_of(ctx)
        n_before, left = len(baseline.within(targets)), after.within(targets)
        is_ok = not left or (ctx.task.allow_partial and len(left) < n_before)
        rules = rule_counts(baseline.within(targets), left)
        return GateResult(
            name=self.name,
            verdict=GateVerdict.PASS if is_ok else GateVerdict.FAIL,
            command=after.command,
            exit_code=after.exit_code,
            before={"violations": n_before},
            after={"violations": len(left)},
            details=f"{len(left)} violation(s) left in the targets"
            + (f"; per rule: {rules}" if rules else ""),
            offending=[str(v) for v in left[:MAX_OFFENDING]],
        )


@dataclass
class ElsewhereLintGate:
    """fix-lint: no new violation outside the targets, matched by (file, rule, message)."""

    runner: LintRunner
    name: str = "lint-elsewhere"

    def baseline(self, ctx: GateContext) -> LintReport:
        return self.runner.report(ctx)

    def check(self, ctx: GateContext, baseline: Measurement | None) -> GateResult:
        baseline, after = as_lint_report(baseline), self.runner.report(ctx)
        if after.error or baseline.error:
            return _error(self.name, after if after.error else baseline)
        targets = targets_of(ctx)
        before_v, after_v = baseline.outside(targets), after.outside(targets)
        extra = new_violations(before_v, after_v)
        return GateResult(
            name=self.name,
            verdict=GateVerdict.FAIL if extra else GateVerdict.PASS,
            command=after.command,
            exit_code=after.exit_code,
            before={"violations": len(before_v)},
            after={"violations": len(after_v), "new": len(extra)},
            details=f"{len(extra)} new violation(s) outside the targets",
            offending=[str(v) for v in extra[:MAX_OFFENDING]],
        )


@dataclass
class TouchedLintGate:
    """change: lint on the files the diff touches is not worse than in the base commit (per file).

    Measured at check time on the touched Python files only: the working files in one ruff run, their base
    versions through stdin; a diff that touches no Python file runs no ruff at all.
    """

    runner: LintRunner | None = None  # not used: the touched files are linted on their own
    name: str = "lint-touched"

    def baseline(self, ctx: GateContext) -> None:
        return None

    def check(self, ctx: GateContext, baseline: object) -> GateResult:
        diff = work_diff(ctx.checkout, ctx.base_commit)
        touched = [p for p in diff.paths("A", "M") if p.endswith(".py")]
        if not touched:
            return GateResult(
                name=self.name, verdict=GateVerdict.PASS, before={"violations": 0}, after={"violations": 0},
                details="0 touched Python file(s); ruff not run",
            )  # fmt: skip
        after = run_ruff(ctx.checkout, touched, force_exclude=True, sandbox=ctx.sandbox)
        before = base_report(ctx, [p for p in touched if diff.files[p].status == "M"])
        if after.error or before.error:
            return _error(self.name, after if after.error else before)
        before_n, after_n = before.per_file(), after.per_file()
        worse = [f for f in touched if after_n[f] > before_n[f]]
        offending = [str(v) for v in new_violations(before.violations, after.violations) if v.file in worse]
        return GateResult(
            name=self.name,
            verdict=GateVerdict.FAIL if worse else GateVerdict.PASS,
            command=after.command,
            exit_code=after.exit_code,
            before={"violations": sum(before_n[f] for f in touched)},
            after={"violations": sum(after_n[f] for f in touched)},
            details=f"{len(touched)} touched file(s); worse: {', '.join(worse) or 'none'}",
            offending=offending[:MAX_OFFENDING],
        )


def base_report(ctx: GateContext, paths: list[str]) -> LintReport:
    """Lint the base commit's versions of `paths` (one ruff run per file, through stdin)."""
    sources = show_files(ctx.checkout, ctx.base_commit, paths)
    sandbox = ctx.sandbox
    reports = [
        run_ruff_source(ctx.checkout, p, text, sandbox=sandbox)
        for p, text in sources.items()
        if text is not None
    ]
    failed = [r for r in reports if r.error]
    if failed:
        return failed[0]
    exit_code = max((r.exit_code for r in reports), default=0)
    return LintReport(
        "ruff check (base versions)", exit_code, tuple(v for r in reports for v in r.violations)
    )
