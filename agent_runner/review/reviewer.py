"""Reviewing a pull request with a model: split the diff into chunks that fit, collect findings and a verdict.

Each chunk is one model call with the `review.md.j2` prompt and one tool, `finish`, whose `summary` is a JSON
object `{verdict, findings}`. Files without a text diff or too large to fit are named in `skipped`,
never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent_runner.config.prompts import render
from agent_runner.core.findings import parse_answer
from agent_runner.core.messages import Message, ModelTurn, ToolSpec, Usage
from agent_runner.core.protocols import Model
from agent_runner.core.result import Finding, Severity
from agent_runner.core.task import Task, TaskKind
from agent_runner.github.api import GitHubRepo
from agent_runner.github.records import FileDiff, PullInfo

SYSTEM = (
    "You review pull requests made by a coding agent. In this review you cannot run commands: the diff "
    "in the message is the change, or one part of it. Report only real problems, each on a line the diff "
    "adds or keeps. "
    "Answer by calling the `finish` tool exactly once."
)
FINISH_TOOL = ToolSpec(
    name="finish",
    description="Report the review: `summary` is one JSON object {verdict, findings}.",
    parameters={
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "The JSON object with verdict and findings."}
        },
        "required": ["summary"],
    },
)


class SkippedFile(BaseModel):
    """A changed file the review did not read, and why."""

    file: str
    reason: str


class ReviewReport(BaseModel):
    """The findings and verdict for one pull request."""

    pr: int
    url: str
    task_id: str | None = None
    head_sha: str = ""
    verdict: str = "approve"
    notes: list[str] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    reviewed: list[str] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    n_chunks: int = 0
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None

    @property
    def blocking(self) -> list[Finding]:
        """The findings that must be fixed before merging."""
        return [f for f in self.findings if f.severity == Severity.BLOCKING]


def file_diff(entry: FileDiff, patch: str | None = None) -> str:
    """Return a unified diff for one file (or one part of it)."""
    name = entry.filename
    return (
        f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n{(patch or entry.patch or '').rstrip()}\n"
    )


def split_hunks(patch: str) -> list[str]:
    """Split a patch into its @@ hunks."""
    starts = [m.start() for m in re.finditer(r"^@@ ", patch, re.M)] or [0]
    return [patch[a:b] for a, b in zip(starts, [*starts[1:], len(patch)], strict=True)]


def split_diff(files: Sequence[FileDiff], budget: int) -> tuple[list[str], list[str], list[SkippedFile]]:
    """Pack file diffs into chunks of at most `budget` characters; return (chunks, reviewed, skipped)."""
    pieces: list[str] = []
    reviewed: list[str] = []
    skipped: list[SkippedFile] = []
    for entry in files:
        fitting, reason = _file_pieces(entry, budget)
        if reason:
            skipped.append(SkippedFile(file=entry.filename, reason=reason))
        if fitting:
            reviewed.append(entry.filename)
            pieces.extend(fitting)
    return _pack(pieces, budget), reviewed, skipped


def _file_pieces(entry: FileDiff, budget: int) -> tuple[list[str], str]:
    """Return the parts of one file's diff that fit the budget, and why anything was left out."""
    if not entry.patch:
        return [], "no text diff (binary, renamed only, or too large for GitHub)"
    whole = file_diff(entry)
    parts = [whole] if len(whole) <= budget else [file_diff(entry, hunk) for hunk in split_hunks(entry.patch)]
    fitting = [part for part in parts if len(part) <= budget]
    n_left = len(parts) - len(fitting)
    return fitting, f"{n_left} hunk(s) over {budget} characters" if n_left else ""


def _pack(pieces: list[str], budget: int) -> list[str]:
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(piece) <= budget:
            chunks[-1] += piece
        else:
            chunks.append(piece)
    return chunks


def right_lines(patch: str | None) -> set[int]:
    """Return the new-side line numbers a patch shows (added or context): where inline comments may go."""
    lines: set[int] = set()
    number = 0
    for text in (patch or "").splitlines():
        match = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", text)
        if match:
            number = int(match.group(1))
        elif not text.startswith(("-", "\\")):
            lines.add(number)
            number += 1
    return lines


def review_task(pull: PullInfo, task: Task | None) -> Task:
    """Return the review task given to the prompt: the PR number and what the PR was meant to do."""
    meant = task.instructions if task is not None else "(the task behind this PR is unknown)"
    instructions = f"This pull request was opened for this task:\n\n{meant}"
    return Task(
        id=f"review-pr-{pull.number}", kind=TaskKind.REVIEW, target_pr=pull.number, instructions=instructions
    )


def review_pull(
    gh: GitHubRepo,
    number: int,
    *,
    model: Model,
    task: Task | None,
    chunk_chars: int,
    project_dir: Path | None = None,
) -> ReviewReport:
    """Read a PR's diff, ask the model about each chunk, and return the merged findings and verdict."""
    pull = gh.pull(number)
    chunks, reviewed, skipped = split_diff(gh.files(number), chunk_chars)
    report = ReviewReport(
        pr=number, url=pull.url, task_id=pull.task_id, head_sha=pull.head_sha, model=model.spec,
        reviewed=reviewed, skipped=skipped, n_chunks=len(chunks),
    )  # fmt: skip
    prompt_task = review_task(pull, task)
    for index, chunk in enumerate(chunks, 1):
        part = f" (part {index} of {len(chunks)})" if len(chunks) > 1 else ""
        prompt = render("review.md.j2", project_dir=project_dir, task=prompt_task, pr_title=pull.title + part,
                        pr_body=_strip_markers(pull.body), diff=chunk)  # fmt: skip
        turn = model.query(SYSTEM, [Message.user(prompt)], [FINISH_TOOL])
        _merge(report, turn)
    report.verdict = merge_verdict(report)
    return report


def _merge(report: ReviewReport, turn: ModelTurn) -> None:
    verdict, findings, note = parse_turn(turn)
    report.findings.extend(findings)
    if verdict == "request_changes" or (verdict == "comment" and report.verdict == "approve"):
        report.verdict = verdict
    if note:
        report.notes.append(note)
    report.usage = report.usage + turn.usage
    if turn.cost_usd is not None:
        report.cost_usd = (report.cost_usd or 0.0) + turn.cost_usd


def merge_verdict(report: ReviewReport) -> str:
    """Return request_changes when anything is blocking, else the worst verdict the chunks gave."""
    if report.blocking:
        return "request_changes"
    if report.verdict == "approve" and report.findings:
        return "comment"
    return report.verdict


def parse_turn(turn: ModelTurn) -> tuple[str, list[Finding], str]:
    """Return (verdict, findings, note) from a `finish`/`report_findings` call or JSON in the text."""
    data: Any = None
    for call in turn.message.tool_calls:
        data = call.arguments.get("summary", call.arguments)
        break
    answer = parse_answer(turn.message.text if data is None else data)
    return answer.verdict, answer.findings, answer.note


def _strip_markers(body: str) -> str:
    return re.sub(r"<!-- agent-runner:[^>]*-->", "", body or "").strip()[:4000]
