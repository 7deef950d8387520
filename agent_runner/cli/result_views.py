"""What `show` prints about a task's last result: the gate table, a review's findings, where the change is.

Every text here comes from a task file, a model or a tool's output: it goes to rich as `Text`, never markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agent_runner.core.findings import ReviewAnswer, answer_of
from agent_runner.core.task import TaskStatus
from agent_runner.queue.state import TaskState
from agent_runner.report.change import Change

VERDICT_STYLES = {"pass": "green", "skip": "dim", "fail": "red", "error": "red"}
SEVERITY_STYLES = {"blocking": "bold red", "major": "red", "minor": "yellow", "nit": "dim"}
DETAIL_CHARS = 300
LIMIT_TEXTS = {
    "steps": "the agent's model calls (`steps`)",
    "cost_usd": "the agent's spend (`cost_usd`)",
    "tokens": "the agent's tokens (`tokens`)",
    "minutes": "the agent's wall time, gates excluded (`minutes`)",
    "attempt_minutes": "the whole attempt's wall time, checkout to commit (`attempt_minutes`)",
    "max_disk_mb": "the checkout's size (`max_disk_mb`)",
    "disk": "the machine's free disk, which the attempt filled",
}


def limit_line(result: dict[str, Any]) -> Text | None:
    """Return which limit ended the result's attempt ("Ended by the limit ..."), or None if none did."""
    limit = result.get("limit")
    if not limit:
        return None
    what = LIMIT_TEXTS.get(str(limit), f"`{limit}`")
    attempt = result.get("attempt", "?")
    return Text.assemble(("Ended by a limit: ", "bold red"), f"attempt {attempt} hit {what}")


def gates_table(result: dict[str, Any]) -> Table | None:
    """Return the table of the result's gates (name, verdict, before -> after, details), or None."""
    gates = [g for g in result.get("gates") or [] if isinstance(g, dict)]
    if not gates:
        return None
    title = f"Gates of attempt {result.get('attempt', '?')}"
    table = Table("gate", "verdict", "before -> after", "details", title=title, title_justify="left",
                  box=None, pad_edge=False, header_style="bold")  # fmt: skip
    for gate in gates:
        verdict = str(gate.get("verdict", "?"))
        table.add_row(
            Text(str(gate.get("name", "?"))), Text(verdict, style=VERDICT_STYLES.get(verdict, "")),
            Text(measures(gate.get("before") or {}, gate.get("after") or {})), Text(_detail(gate)),
        )  # fmt: skip
    return table


def measures(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Return "name before -> after" for each measure, "; "-separated ("-" for a side without it)."""
    names = list(dict.fromkeys([*before, *after]))
    return "; ".join(f"{n} {_num(before.get(n))} -> {_num(after.get(n))}" for n in names)


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "-"


def _detail(gate: dict[str, Any]) -> str:
    text = str(gate.get("details") or "").strip()
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def findings_view(answer: ReviewAnswer) -> RenderableType:
    """Return a review's verdict and its findings (file:line, severity, text)."""
    head = Text.assemble(("Review verdict: ", "bold"), (answer.verdict, _verdict_style(answer.verdict)))
    if not answer.findings:
        return Group(head, Text("No findings."))
    table = Table("where", "severity", "finding", box=None, pad_edge=False, header_style="bold")
    for finding in answer.findings:
        where = finding.file + (f":{finding.line}" if finding.line else "")
        severity = finding.severity.value
        table.add_row(Text(where), Text(severity, style=SEVERITY_STYLES.get(severity, "")),
                      Text(finding.explanation))  # fmt: skip
    return Group(head, table)


def _verdict_style(verdict: str) -> str:
    return {"approve": "green", "request_changes": "red"}.get(verdict, "yellow")


def review_answer(state: TaskState) -> ReviewAnswer | None:
    """Return the answer of a review task's last result (None for other kinds or without one)."""
    if state.task_json.get("kind") != "review" or not state.result_json:
        return None
    return answer_of(state.result_json)


def change_lines(state: TaskState, change: Change | None, problem: str = "") -> list[Text]:
    """Return where the task's change is and the commands to look at it (or why there is none)."""
    result, definition = state.result_json or {}, state.task_json  # as stored: older results lack fields
    if definition.get("kind") == "review":
        base = str(result.get("base_commit") or "")[:12]
        paths = ", ".join(definition.get("paths") or [])
        what = paths or str(result.get("branch") or definition.get("branch") or "the branch")
        return [Text(f"Reviewed {what} at {base}")] if result and base else []
    if change is None:
        is_done = state.status in (TaskStatus.FINISHED, TaskStatus.UNPUBLISHED)
        return [Text(f"No change to look at: {problem}")] if is_done and problem else []
    return [
        Text(f"Branch {change.branch} at {change.head[:12]} (base {change.base[:12]}) in {change.repo}"),
        Text(f"Look at the change: run-agents diff {state.id}   (or: {change.git_command})"),
    ]
