"""Acting on a review: one GitHub review updated in place, and follow-up fix tasks with a round bound."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agent_runner.config.github import GitHubConfig
from agent_runner.core.errors import GitHubError
from agent_runner.core.protocols import Model
from agent_runner.core.redact import Redactor
from agent_runner.core.result import Finding
from agent_runner.core.task import Task, TaskKind, render_task_file
from agent_runner.core.task_io import write_new_file
from agent_runner.github.api import GitHubRepo
from agent_runner.github.records import FileDiff
from agent_runner.review.reviewer import ReviewReport, review_pull, right_lines

REVIEW_MARKER = "<!-- agent-runner:review -->"
FINDING_MARKER = "<!-- agent-runner:finding -->"
VERDICT_TEXT = {"approve": "✅ approve", "comment": "💬 comment", "request_changes": "❌ changes requested"}


class TaskLookup(Protocol):
    """Where the review finds the task behind a PR and the ids already used (tasks folder and queue)."""

    def get(self, task_id: str) -> Task | None: ...

    def ids(self) -> set[str]: ...


@dataclass(frozen=True)
class PostResult:
    """What posting did: whether an earlier review was updated, and the comment counts."""

    updated: bool
    n_inline: int
    n_deleted: int


def split_inline(report: ReviewReport, files: list[FileDiff]) -> tuple[list[Finding], list[Finding]]:
    """Return (findings on a diff line, findings that cannot be inline comments)."""
    lines = {entry.filename: right_lines(entry.patch) for entry in files}
    inline = [f for f in report.findings if f.line is not None and f.line in lines.get(f.file, set())]
    return inline, [f for f in report.findings if f not in inline]


def summary_body(report: ReviewReport, outside: list[Finding], *, fix_note: str = "") -> str:
    """Return the review summary: verdict, counts, findings off the diff, skipped files, and the marker."""
    counts = ", ".join(
        f"{sum(f.severity == s for f in report.findings)} {s}" for s in ("blocking", "major", "minor", "nit")
    )
    lines = [
        f"### agent-runner review: {VERDICT_TEXT.get(report.verdict, report.verdict)}",
        "",
        f"Model `{report.model}` read {len(report.reviewed)} file(s) in {report.n_chunks} part(s); "
        f"findings: {counts}.",
    ]
    if outside:
        lines += ["", "Findings not on a line of the diff:"]
        lines += [
            f"- **{f.severity}** `{f.file}{f':{f.line}' if f.line else ''}`: {f.explanation}" for f in outside
        ]
    if report.skipped:
        lines += ["", "Not reviewed (read these by hand):"]
        lines += [f"- `{s.file}`: {s.reason}" for s in report.skipped]
    lines += [f"- note: {note}" for note in report.notes]
    if fix_note:
        lines += ["", fix_note]
    return "\n".join([*lines, "", REVIEW_MARKER])


def comment_body(finding: Finding) -> str:
    """Return the text of one inline comment, with the marker that lets a later review find it."""
    return f"**{finding.severity}**: {finding.explanation}\n\n{FINDING_MARKER}"


def post_review(gh: GitHubRepo, report: ReviewReport, *, fix_note: str = "") -> PostResult:
    """Post the review once; later runs edit that review and its inline comments instead of adding one."""
    files = gh.files(report.pr)
    inline, outside = split_inline(report, files)
    body = summary_body(report, outside, fix_note=fix_note)
    earlier = [r for r in gh.reviews(report.pr) if REVIEW_MARKER in r.body]
    if not earlier:
        comments = [
            {"path": f.file, "line": f.line, "side": "RIGHT", "body": comment_body(f)} for f in inline
        ]
        gh.create_review(report.pr, body=body, comments=comments)
        return PostResult(updated=False, n_inline=len(inline), n_deleted=0)
    gh.edit_review(report.pr, earlier[-1].id, body=body)
    old = {(c.path, c.line): c for c in gh.review_comments(report.pr) if FINDING_MARKER in c.body}
    for finding in inline:
        comment = old.pop((finding.file, finding.line), None)
        if comment is not None:
            gh.edit_review_comment(report.pr, comment.id, body=comment_body(finding))
        else:
            gh.add_review_comment(
                report.pr,
                body=comment_body(finding),
                path=finding.file,
                line=finding.line or 0,
                sha=report.head_sha,
            )
    for comment in old.values():
        gh.edit_review_comment(report.pr, comment.id, body=None)
    return PostResult(updated=True, n_inline=len(inline), n_deleted=len(old))


@dataclass(frozen=True)
class FixPlan:
    """A follow-up task for blocking findings, or why there is none."""

    task: Task | None
    round: int
    reason: str


def root_id(task_id: str) -> str:
    """Return the id of the original task behind a chain of fix tasks."""
    return re.sub(r"(-fix\d+)+$", "", task_id)


def plan_fix(
    report: ReviewReport, *, task: Task | None, head_ref: str, known_ids: set[str], max_rounds: int
) -> FixPlan:
    """Return the next fix task for the PR's blocking findings, unless none or the bound is reached."""
    if not report.blocking:
        return FixPlan(None, 0, "no blocking findings: nothing to fix")
    root = root_id(report.task_id or (task.id if task else f"pr-{report.pr}"))
    done = [int(m.group(1)) for i in known_ids if (m := re.fullmatch(rf"{re.escape(root)}-fix(\d+)", i))]
    next_round = max(done, default=0) + 1
    if next_round > max_rounds:
        return FixPlan(
            None, next_round, f"review/fix round bound reached ({max_rounds} per PR); a person takes over"
        )
    lines = "\n".join(f"- `{f.file}:{f.line or '?'}`: {f.explanation}" for f in report.blocking)
    instructions = (
        f"A review of pull request #{report.pr} found blocking problems. Fix each one on this branch; change "
        f"nothing else.\n\n{lines}\n\nThe original task:\n\n{task.instructions if task else '(unknown)'}"
    )
    fix = Task(
        id=f"{root}-fix{next_round}", kind=TaskKind.CHANGE,
        title=f"Address review of #{report.pr} (round {next_round})",
        instructions=instructions, branch=head_ref, base=head_ref,
        paths=sorted({f.file for f in report.blocking}),
        labels=list(task.labels) if task else [], pr=task.pr if task else "draft",
    )  # fmt: skip
    return FixPlan(fix, next_round, f"fix round {next_round} of {max_rounds}: task {fix.id}")


def write_fix_task(plan: FixPlan, tasks_dir: Path) -> Path | None:
    """Write the fix task file into the tasks folder; return its path (None when there is no task)."""
    if plan.task is None:
        return None
    tasks_dir.mkdir(parents=True, exist_ok=True)
    path = tasks_dir / f"{plan.task.id}.md"
    write_new_file(path, render_task_file(plan.task), replace=True)  # a reader never sees half a task file
    return path


@dataclass(frozen=True)
class ReviewOutcome:
    """One reviewed PR: the report, what was posted, and the fix task written."""

    report: ReviewReport
    posted: PostResult | None = None
    fix: FixPlan | None = None
    fix_file: str | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = self.report.model_dump(mode="json")
        data["posted"] = None if self.posted is None else self.posted.__dict__
        fix = self.fix
        data["fix"] = fix and {"task": fix.task and fix.task.id, "round": fix.round, "reason": fix.reason}
        data["fix_file"] = self.fix_file
        return data


def parse_pr_ref(text: str) -> int:
    """Return the PR number from '12', '#12' or a pull request URL."""
    match = re.fullmatch(r"#?(\d+)|.*/pulls?/(\d+)(?:[/?#].*)?", text.strip())
    if not match:
        raise GitHubError(f"'{text}' is not a PR number or pull request URL")
    return int(match.group(1) or match.group(2))


def review_prs(
    gh: GitHubRepo, refs: list[str], *, model: Model, tasks: TaskLookup, config: GitHubConfig,
    root: Path, tasks_dir: Path, all_open: bool = False, post: bool = False, fix: bool = False,
    redactor: Redactor | None = None,
) -> list[ReviewOutcome]:  # fmt: skip
    """Review each PR (or every open agent PR); optionally post the review and write fix tasks.

    The model's findings are untrusted text: `redactor` (default: this environment's secret-looking
    variables) masks secrets in them before anything is posted or written.
    """
    redactor = redactor or Redactor.from_env(os.environ)
    numbers = [parse_pr_ref(r) for r in refs]
    if all_open:
        if not config.labels:
            raise GitHubError("--all finds agent PRs by label; set [tool.agent-runner.github] labels")
        numbers += [p.number for p in gh.labeled_pulls(config.labels[0]) if p.number not in numbers]
    outcomes = []
    for number in numbers:
        pull = gh.pull(number)
        task = tasks.get(pull.task_id) if pull.task_id else None
        report = review_pull(
            gh, number, model=model, task=task, chunk_chars=config.review_chunk_chars, project_dir=root
        )
        report = ReviewReport.model_validate(redactor.obj(report.model_dump(mode="json")))
        plan = (
            plan_fix(
                report,
                task=task,
                head_ref=pull.head_ref,
                known_ids=tasks.ids(),
                max_rounds=config.review_rounds,
            )
            if fix
            else None
        )
        path = write_fix_task(plan, tasks_dir) if plan else None
        posted = post_review(gh, report, fix_note=plan.reason if plan else "") if post else None
        outcomes.append(ReviewOutcome(report, posted, plan, str(path) if path else None))
    return outcomes
