"""`sweep issues --label L`: one change task per open issue carrying the label; the issue number is its id.

The issue's title and body are anyone's text: they are cut to size and freed of control characters before
they become a task file, and the body is the agent's instructions, as the label asked. The task's first
line links the issue back ("Closes #N"), and the pull request body quotes the task, so it links back too.
"""

from __future__ import annotations

import re

from agent_runner.core.task import Task, TaskKind
from agent_runner.github.body import fenced
from agent_runner.github.records import IssueInfo
from agent_runner.sweeps.plan import PlannedTask, SweepKind, SweepPlan, by_gain

MAX_TITLE = 120
MAX_BODY = 20_000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps tab and newline
# Bidi overrides and isolates (text that reads otherwise than it is), lone surrogates (no file can hold them)
HIDDEN = re.compile(r"[\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
LINE_BREAKS = re.compile(r"[\n\u2028\u2029]")  # a title is one line
# "Fixes #3" in a title would close issue 3 once the commit lands: a zero-width joiner breaks the keyword
CLOSING = re.compile(
    r"(?i)\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b(?=\s*:?\s*(?:[\w.-]+/[\w.-]+)?#\d|\s*:?\s*https?://)"
)
MENTION = re.compile(r"@(?=[A-Za-z0-9])")  # "@team" in a title would ping them from every PR heading
QUOTED = "The issue as filed (quoted: its mentions and references are no links):"


def plan_issues(issues: list[IssueInfo], *, label: str) -> SweepPlan:
    """Return one change task per issue (the caller lists the open issues with `label`)."""
    planned = [_issue_task(issue) for issue in issues]
    notes = (
        ("issue tasks name no paths: the scheduler runs them side by side, and their pull requests may meet",)
        if planned
        else ()
    )
    return SweepPlan(SweepKind.ISSUES, by_gain(planned), notes, (f"label:{label}",), {"issues": len(issues)})


def _issue_task(issue: IssueInfo) -> PlannedTask:
    title = LINE_BREAKS.sub(" ", _clean(issue.title)).strip()[:MAX_TITLE] or f"Issue #{issue.number}"
    title = CLOSING.sub(lambda m: f"{m[1][0]}\u200d{m[1][1:]}", title)  # the commit message holds it
    title = MENTION.sub("@\u200d", title)
    body = _clean(issue.body).strip()
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n\n(the issue's text is cut here; read the rest on GitHub)"
    url = LINE_BREAKS.sub("", _clean(issue.url))
    link = f"Closes #{issue.number} ({url})" if url else f"Closes #{issue.number}"
    filed = fenced(f"# {title}\n\n{body or '(the issue has no description)'}", info="markdown")
    instructions = "\n".join([link, "", QUOTED, "", filed])
    task = Task(
        id=f"issue-{issue.number}", kind=TaskKind.CHANGE, title=f"#{issue.number}: {title}",
        instructions=instructions, labels=[SweepKind.ISSUES.label],
    )  # fmt: skip
    return PlannedTask(task, covers=f"#{issue.number}", gain=0, summary=title)


def _clean(text: str) -> str:
    return HIDDEN.sub("", CONTROL.sub("", text.replace("\r\n", "\n")))
