"""The pull request body: task, summary, gate table, figures, trajectory excerpt, marker; capped.

Agent text (the summary, the trajectory excerpt) goes in fenced code blocks that nothing inside can close
(the fence is longer than any backtick run in the text), so it cannot hide the runner's sections in an
unclosed comment or fence, and its @mentions notify nobody; every `<!` in it gets a zero-width joiner, so no
agent text can form an HTML comment or a copy of the runner's task marker.
"""

from __future__ import annotations

import re
from pathlib import Path

from agent_runner.core.result import GateResult, TaskResult, sandbox_note
from agent_runner.core.task import Task
from agent_runner.gates.report import render_table
from agent_runner.github.records import MARKER
from agent_runner.worker.trajectory import is_trajectory_file, render_trajectory

EXCERPT_CHARS = 12_000


def render_body(task: Task, result: TaskResult, *, max_chars: int = 60_000) -> str:
    """Return the PR body for an accepted result, at most `max_chars` long, with the task marker."""
    marker = MARKER.format(task_id=task.id)
    head = [
        f"Automated change by **agent-runner** for task `{task.id}` ({task.kind.value}).",
        "",
        *sandbox_warning(result),
        "### Task",
        _quote(task.instructions or task.display_title, 6_000),
        "",
        "### Agent summary",
        fenced(_clip(result.summary or "(no summary)", 6_000)),
        "",
        "### Gates (runner-checked, baseline vs after)",
        gate_table(result.gates),
        "",
        "### Run",
        figures(result),
    ]
    excerpt = trajectory_excerpt(result.trajectory_path)
    tail = ["", "<details><summary>Trajectory excerpt</summary>", "", fenced(excerpt), "</details>"]
    text = "\n".join(head + (tail if excerpt else []))
    budget = max_chars - len(marker) - 40
    if len(text) > budget:
        text = text[:budget] + "\n\n…(truncated)"
    return f"{text}\n\n{marker}\n"


def gate_table(gates: list[GateResult]) -> str:
    """Return the Markdown gate table (gate, baseline, after, verdict) the gates report uses everywhere."""
    return render_table(gates) if gates else "_No gates ran._"


def sandbox_warning(result: TaskResult) -> list[str]:
    """Return a GitHub warning block and a blank line when the agent ran unconfined, else nothing."""
    if result.sandbox != "none":
        return []
    return ["> [!WARNING]", f"> {sandbox_note(result.sandbox, machine=result.machine)}", ""]


def figures(result: TaskResult) -> str:
    """Return the run figures: attempt, steps, tokens, cost, model, sandbox, duration."""
    usage = result.usage
    cost = f"${result.cost_usd:.4f}" if result.cost_usd is not None else "unknown"
    return "\n".join(
        [
            f"- attempt: {result.attempt}",
            f"- steps: {result.steps} ({result.model_calls} model calls)",
            f"- tokens: {usage.total_input:,} in, {usage.output_tokens:,} out",
            f"- cost: {cost}",
            f"- model: `{result.model or 'unknown'}`",
            f"- sandbox: {result.sandbox or 'unknown'}",
            f"- duration: {result.duration_s:.0f} s",
            f"- commits: `{(result.base_commit or '?')[:12]}..{(result.head_commit or '?')[:12]}`",
        ]
    )


def trajectory_excerpt(path: str | None, *, limit: int = EXCERPT_CHARS) -> str:
    """Return the end of a trajectory rendered as text (empty when the file is not here)."""
    if not path or not is_trajectory_file(Path(path)):
        return ""
    text = render_trajectory(Path(path), max_output_chars=400)
    return text if len(text) <= limit else "…\n" + text[-limit:]


def fenced(text: str, *, info: str = "text") -> str:
    """Return agent text as a fenced code block that no line of the text can close, with `<!` defused."""
    text = defuse(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def defuse(text: str) -> str:
    """Return `text` with a zero-width joiner after each `<` before `!`: no HTML comment, no task marker."""
    return text.replace("<!", "<\u200d!")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _quote(text: str, limit: int) -> str:
    return "\n".join(f"> {line}" for line in _clip(text.strip(), limit).splitlines())
