"""`sweep lint`: ruff and its fixes in a scratch checkout; what remains is grouped into fix-lint tasks.

Files that `ruff check --fix` clears entirely make one task that needs no model. The rest are grouped by
folder: small files of one folder share a task up to the per-task size, and a file over it is split by line
ranges into parts (each `allow_partial`: the other parts are other tasks; their hunks do not meet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import ConfigError
from agent_runner.core.task import Limits, Task, TaskKind
from agent_runner.gates.ruff import LintReport, Violation, run_ruff
from agent_runner.sweeps.plan import (
    PlannedTask,
    SweepKind,
    SweepPlan,
    by_gain,
    distinct_ids,
    left_out_note,
    nameable,
    require_paths,
    shown,
    stable_id,
)
from agent_runner.sweeps.scratch import scratch_checkout

FIXABLE_ID = "lint-ruff-fix"
MAX_ROWS = 200  # files listed in a task body; the paths field lists them all
STEPS_PER_VIOLATION = 1.5  # a look and an edit, with room for a gate round: 30 steps hold 20 violations


@dataclass(frozen=True)
class LintFindings:
    """Violations per file before and after `ruff check --fix`, and those only the extra rules find."""

    before: dict[str, tuple[Violation, ...]]
    after: dict[str, tuple[Violation, ...]]
    beyond_config: tuple[Violation, ...] = ()
    scope: tuple[str, ...] = (".",)
    select: tuple[str, ...] = ()  # rules added to the repo's config: the tasks carry them (lint_select)
    left_out: tuple[str, ...] = ()  # files no task can name (outside the checkout, a control character)


@dataclass(frozen=True)
class LintOptions:
    """What `sweep lint` looks at: the paths, rules added to the repo's, and the per-task size."""

    paths: tuple[str, ...] = (".",)
    select: tuple[str, ...] = ()
    per_task: int | None = None  # None: from the kind's step limit (per_task_limit)


def sweep_lint(
    root: Path, config: RunnerConfig, options: LintOptions, *, base: str | None = None
) -> SweepPlan:
    """Measure the base commit of the repo at `root` in a scratch checkout and return the fix-lint plan."""
    per_task = options.per_task or per_task_limit(config.limits_for(TaskKind.FIX_LINT))
    with scratch_checkout(root, base=base) as checkout:
        findings = measure_lint(checkout.path, options.paths, select=options.select)
    return plan_lint(findings, per_task=per_task)


def per_task_limit(limits: Limits) -> int:
    """Return how many violations a model's fix-lint task holds, from the kind's step limit."""
    return max(1, int((limits.steps or 30) / STEPS_PER_VIOLATION))


def measure_lint(checkout: Path, paths: Sequence[str], *, select: Sequence[str] = ()) -> LintFindings:
    """Run ruff (the repo's config plus `select`), then `ruff check --fix`, then ruff again, in `checkout`."""
    require_paths(checkout, paths)
    extra = ["--extend-select", ",".join(select)] if select else []
    plain = _checked(run_ruff(checkout, paths, force_exclude=True)) if select else None
    before = _checked(run_ruff(checkout, paths, force_exclude=True, extra=extra))
    run_ruff(checkout, paths, fix=True, force_exclude=True, extra=extra)
    after = _checked(run_ruff(checkout, paths, force_exclude=True, extra=extra))
    beyond = () if plain is None else tuple(sorted(set(before.violations) - set(plain.violations), key=str))
    out = {v.file for v in before.violations + after.violations if not nameable(checkout, v.file)}
    return LintFindings(
        _per_file(before.violations, out), _per_file(after.violations, out),
        tuple(v for v in beyond if v.file not in out), tuple(paths), tuple(select),
        tuple(sorted(shown(checkout, name) for name in out)),
    )  # fmt: skip


def _checked(report: LintReport) -> LintReport:
    if report.error:
        raise ConfigError(
            f"ruff could not lint the base commit ({report.command}): {report.error}; "
            "fix the repo's ruff config (or the --select rules) and sweep again"
        )
    return report


def _per_file(violations: Iterable[Violation], left_out: set[str]) -> dict[str, tuple[Violation, ...]]:
    files: dict[str, list[Violation]] = {}
    for violation in (v for v in violations if v.file not in left_out):
        files.setdefault(violation.file, []).append(violation)
    return {name: tuple(found) for name, found in sorted(files.items())}


def plan_lint(findings: LintFindings, *, per_task: int) -> SweepPlan:
    """Return the fix-lint tasks for the findings: one model-free task, then folder groups and split files."""
    left = {name: found for name, found in findings.after.items() if found}
    fixable = [name for name, found in findings.before.items() if found and name not in left]
    planned = [_fixable_task(fixable, findings.before)] if fixable else []
    for folder, files in _by_folder(left).items():
        planned += _folder_tasks(folder, files, findings, per_task)
    n_before = sum(map(len, findings.before.values()))
    figures = {
        "violations": n_before,
        "left_after_fix": sum(map(len, left.values())),
        "files": len(findings.before),
    }
    if findings.select:  # the tasks' gates and ruff --fix check the rules the sweep found violated
        rules = {"lint_select": list(findings.select)}
        planned = [replace(p, task=p.task.model_copy(update=rules)) for p in planned]
    return SweepPlan(
        SweepKind.LINT, by_gain(distinct_ids(planned)), _notes(findings), findings.scope, figures
    )


def _notes(findings: LintFindings) -> tuple[str, ...]:
    notes = []
    if findings.beyond_config:
        rules = ", ".join(sorted({v.rule for v in findings.beyond_config}))
        notes.append(
            f"{len(findings.beyond_config)} violation(s) come from rules the repo's ruff config does not "
            f"enable ({rules}); the tasks carry them (lint_select), so ruff --fix and their gates check "
            "them too"
        )
    if findings.left_out:
        notes.append(left_out_note(findings.left_out, what="lint"))
    return tuple(notes)


def _fixable_task(files: list[str], before: dict[str, tuple[Violation, ...]]) -> PlannedTask:
    n_total = sum(len(before[name]) for name in files)
    rows = [f"| {name} | {len(before[name])} |" for name in files[:MAX_ROWS]]
    more = [f"| ... and {len(files) - MAX_ROWS} more | |"] if len(files) > MAX_ROWS else []
    body = "\n".join([
        f"`ruff check --fix` clears all {n_total} violations in these {len(files)} files: no model needed.",
        "", "| file | violations |", "|---|---|", *rows, *more,
        "", f"Per rule: {_rule_counts(v for name in files for v in before[name])}.",
    ])  # fmt: skip
    title = f"ruff --fix: {_n(n_total, 'violation')} in {_n(len(files), 'file')}"
    task = _task(FIXABLE_ID, title, files, body, n_total)
    return PlannedTask(task, covers="ruff --fix", gain=n_total, needs_model=False, summary=title)


def _by_folder(files: dict[str, tuple[Violation, ...]]) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for name in sorted(files):
        folders.setdefault(str(PurePosixPath(name).parent), []).append(name)
    return folders


def _folder_tasks(folder: str, files: list[str], findings: LintFindings, per_task: int) -> list[PlannedTask]:
    left = findings.after
    planned = [p for name in files if len(left[name]) > per_task for p in _split(name, findings, per_task)]
    groups = _packed([name for name in files if len(left[name]) <= per_task], left, per_task)
    n_shared = 0
    for group in groups:
        if len(group) == 1:
            key = group[0]
        else:
            n_shared += 1
            key = f"{folder}/files" + (f"-{n_shared}" if n_shared > 1 else "")
        planned.append(_group_task(stable_id("lint", key), key, group, findings))
    return planned


def _packed(files: list[str], left: dict[str, tuple[Violation, ...]], per_task: int) -> list[list[str]]:
    """Pack files (in path order) into groups of at most `per_task` violations."""
    groups: list[list[str]] = []
    size = 0
    for name in files:
        if groups and size + len(left[name]) <= per_task:
            groups[-1].append(name)
            size += len(left[name])
        else:
            groups.append([name])
            size = len(left[name])
    return groups


def _group_task(task_id: str, key: str, files: list[str], findings: LintFindings) -> PlannedTask:
    before, left = findings.before, findings.after
    n_left = sum(len(left[name]) for name in files)
    n_total = sum(len(before.get(name, ())) for name in files)
    counts = [(n, len(before.get(n, ())), len(left[n])) for n in files]
    rows = [f"| {n} | {total} | {max(0, total - rest)} | {rest} |" for n, total, rest in counts]
    body = "\n".join([
        "Fix the ruff violations that `ruff check --fix` leaves in these files, without changing behaviour.",
        "", "| file | violations | fixed by ruff --fix | left for you |", "|---|---|---|---|", *rows,
        "", f"Left per rule: {_rule_counts(v for name in files for v in left[name])}.",
    ])  # fmt: skip
    where = files[0] if len(files) == 1 else f"{len(files)} files of {PurePosixPath(files[0]).parent}/"
    title = f"Fix {_n(n_left, 'lint violation')} in {where}"
    task = _task(task_id, title, files, body, max(n_total, n_left))
    return PlannedTask(task, covers=key, gain=max(n_total, n_left), summary=title)


def _split(name: str, findings: LintFindings, per_task: int) -> list[PlannedTask]:
    """Split one file's violations into parts of about `per_task`, by line (a line stays in one part)."""
    parts: list[list[Violation]] = []
    for violation in sorted(findings.after[name], key=lambda v: (v.line, v.column)):
        same_line = parts and parts[-1][-1].line == violation.line
        if parts and (len(parts[-1]) < per_task or same_line):
            parts[-1].append(violation)
        else:
            parts.append([violation])
    return [_part_task(name, k, len(parts), part, findings) for k, part in enumerate(parts, start=1)]


def _part_task(name: str, k: int, n_parts: int, part: list[Violation], findings: LintFindings) -> PlannedTask:
    n_left = len(findings.after[name])
    lines = f"{part[0].line}-{part[-1].line}"
    body = "\n".join([
        f"Part {k} of {n_parts} of {name}: fix the {len(part)} ruff violations on lines {lines} (of {n_left} "
        "that `ruff check --fix` leaves in the file), without changing behaviour. The other parts are other "
        "tasks: leave the violations outside these lines alone.",
        "", *[f"- {v.line}:{v.column} {v.rule} {v.message}" for v in part],
    ])  # fmt: skip
    title = f"Fix lint in {name} (part {k} of {n_parts}: lines {lines})"
    task_id = stable_id("lint", f"{name.removesuffix('.py')}-part-{k}")
    task = _task(task_id, title, [name], body, len(part), partial=True)
    return PlannedTask(task, covers=f"{name}#{k}", gain=len(part), summary=title)


def _task(task_id: str, title: str, paths: list[str], body: str, gain: int, *, partial: bool = False) -> Task:
    return Task(
        id=task_id, kind=TaskKind.FIX_LINT, title=title, instructions=body, paths=paths, priority=gain,
        labels=[SweepKind.LINT.label], allow_partial=partial,
    )  # fmt: skip


def _rule_counts(violations: Iterable[Violation]) -> str:
    counts = Counter(v.rule for v in violations)
    return ", ".join(f"{rule} x{n}" for rule, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
