"""Typed records for pull requests, diffs, reviews and comments, and the hidden task marker in PR bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER = "<!-- agent-runner:task={task_id} -->"
MARKER_RE = re.compile(r"<!-- agent-runner:task=([a-z0-9-]+) -->")


def trailing_task_ids(body: str) -> list[str]:
    """Return the task ids of the marker lines that END the body, in order (the runner appends them there).

    A marker anywhere else (the agent's summary, a printed line in the trajectory excerpt) is not one: the
    first id is the task that last published the PR, any others the earlier tasks of a review/fix chain.
    """
    ids: list[str] = []
    for line in reversed((body or "").rstrip().splitlines()):
        match = MARKER_RE.fullmatch(line.strip())
        if match is None:
            break
        ids.append(match.group(1))
    return ids[::-1]


@dataclass(frozen=True)
class PullInfo:
    """A pull request as the runner needs it."""

    number: int
    url: str
    title: str
    body: str
    state: str
    draft: bool
    merged: bool
    head_ref: str
    head_sha: str
    base_ref: str
    mergeable: bool | None = None
    mergeable_state: str = ""
    labels: tuple[str, ...] = ()

    @property
    def task_ids(self) -> list[str]:
        """The task ids of the runner's markers at the end of the body (the latest publisher first)."""
        return trailing_task_ids(self.body)

    @property
    def task_id(self) -> str | None:
        """The task id of the runner's marker at the end of the body, if any (not one the agent wrote)."""
        ids = self.task_ids
        return ids[0] if ids else None


@dataclass(frozen=True)
class IssueInfo:
    """An issue (not a pull request) as a sweep needs it; title and body are anyone's text."""

    number: int
    url: str
    title: str
    body: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileDiff:
    """One changed file of a pull request; `patch` is None when GitHub shows no text diff."""

    filename: str
    status: str
    patch: str | None


@dataclass(frozen=True)
class ReviewInfo:
    """A submitted review."""

    id: int
    body: str
    state: str
    user: str


@dataclass(frozen=True)
class CommentInfo:
    """An inline review comment or an issue comment."""

    id: int
    body: str
    path: str = ""
    line: int | None = None
    review_id: int | None = None


@dataclass(frozen=True)
class PullStatus:
    """A PR's live status for `run-agents prs`."""

    pull: PullInfo
    checks: str
    review_state: str
    reviews: dict[str, str] = field(default_factory=dict)
