"""Trajectories: one JSON line per event of an agent run, appended and flushed as it happens.

Records carry a `type`: `start` (system prompt, tools, limits), `user` (task or gate report), `model` (one
model turn: message, usage, cost, seconds), `tools` (the results of that turn's calls, seconds each),
`elided`, `end` (exit status, summary, totals) and `aborted` (a model error that propagated). A crash leaves
every finished record readable; a torn last line is reported as unreadable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent_runner.core.cost import usd
from agent_runner.core.messages import Usage
from agent_runner.core.redact import Redactor

TRAJECTORY_FILE = "trajectory.jsonl"
RENDERED_OUTPUT_CHARS = 2000
SYSTEM_CHARS = 400  # the system prompt is the same in every run; the steps are what a reader wants


def trajectory_path(state_dir: Path, task_id: str, attempt: int) -> Path:
    """Return the trajectory file of one attempt: `<state_dir>/runs/<task>/<attempt>/trajectory.jsonl`."""
    return state_dir / "runs" / task_id / str(attempt) / TRAJECTORY_FILE


def is_trajectory_file(path: Path) -> bool:
    """Whether `path`, named by a record others could have written, may be read as a trajectory: a regular
    file (not a link) named like one. Anything else (`/etc/passwd`, a key file) is never read or shown."""
    return path.name.endswith(TRAJECTORY_FILE) and path.is_file() and not path.is_symlink()


def _redacted(obj: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {key: _redacted(value, redact) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_redacted(value, redact) for value in obj]
    return obj


class TrajectoryWriter:
    """Appends records to a JSONL file, flushing each; `redact` is applied to every string first."""

    def __init__(self, path: Path, *, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.redact = redact

    def write(self, record_type: str, **fields: Any) -> None:
        """Append one record of `record_type` with a timestamp."""
        record = {"type": record_type, "time": round(time.time(), 3), **fields}
        if self.redact is not None:
            record = _redacted(record, self.redact)
        line = json.dumps(record, ensure_ascii=False, default=str)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened per record: a step takes seconds, and no handle is left open when the owner forgets to close.
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def close(self) -> None:
        """Nothing to release (each record opens and closes the file); kept for callers that close."""


def read_trajectory(path: Path) -> list[dict[str, Any]]:
    """Return the records of a trajectory; unreadable lines become `{"type": "unreadable"}` records."""
    records: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            record = {"type": "unreadable", "line": n, "text": line[:200]}
        records.append(record)
    return records


@dataclass(frozen=True)
class Spend:
    """What the model calls a trajectory records cost (cost None: a call of unknown price)."""

    model_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0


def recorded_spend(path: Path) -> Spend:
    """Return the calls, tokens and cost of a trajectory's model records (none when it is not readable)."""
    if not is_trajectory_file(path):
        return Spend()
    calls, usage, cost = 0, Usage(), 0.0
    is_priced = True
    for record in read_trajectory(path):
        if record.get("type") != "model":
            continue
        calls += 1
        with contextlib.suppress(ValidationError):
            usage += Usage.model_validate(record.get("usage") or {})
        value = record.get("cost_usd")
        if isinstance(value, int | float) and value >= 0:
            cost += float(value)
        else:
            is_priced = False
    return Spend(calls, usage, cost if is_priced else None)


# Terminal escape sequences (CSI, OSC up to its BEL or ST, other two-byte ESC ones), then any other C0 or C1
# control character but newline and tab: what the agent printed must not drive the reader's terminal.
CONTROL_RE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """Return `text` without terminal escape sequences and control characters (newlines and tabs kept)."""
    return CONTROL_RE.sub("", text)


def render_trajectory(
    path: Path,
    *,
    max_output_chars: int = RENDERED_OUTPUT_CHARS,
    redact: Callable[[str], str] | None = None,
    is_running: bool | None = None,
) -> str:
    """Return a trajectory as text for a person to read, secrets masked by `redact`, control codes removed.

    By default the values of this process's secret-looking variables and token patterns are masked: a
    trajectory still being written holds what the agent printed, masked only with what its worker knew.
    `is_running` (from the queue) says why a trajectory without an end record has none.
    """
    records = read_trajectory(path)
    lines = [_render(record, max_output_chars) for record in records]
    if closing := _closing(records[-1].get("type") if records else None, is_running):
        lines.append(closing)
    return printable((redact or Redactor.from_env(os.environ).text)("\n".join(lines)))


def _closing(last: str | None, is_running: bool | None) -> str:
    """Return the line after a trajectory that has no end record: why it has none ("" when it has one)."""
    if last in ("end", "aborted"):  # an aborted attempt's own record says how it ended
        return ""
    if is_running:
        return "== (no end record yet: the attempt is still running)"
    if is_running is False:
        return "== (no end record: the attempt was cut off before it ended; its worker stopped or was killed)"
    return "== (no end record: the run is still going or was interrupted)"


def _render(record: dict[str, Any], max_chars: int) -> str:
    kind = record.get("type")
    if kind == "start":
        limits = ", ".join(f"{k}={v}" for k, v in (record.get("limits") or {}).items() if v is not None)
        system = _clip(str(record.get("system", "")), SYSTEM_CHARS)
        model = record.get("model", "?")
        return f"== run started: model {model}; limits: {limits or 'none'}\n-- system --\n{system}"
    if kind == "user":
        return f"\n>> user\n{_clip(str(record.get('text', '')), max_chars)}"
    if kind == "model":
        return _render_model(record)
    if kind == "tools":
        return "\n".join(_render_result(result, max_chars) for result in record.get("results", []))
    if kind == "end":
        return _render_end(record)
    if kind == "aborted":
        return f"\n== aborted: {record.get('error', '')}\n(the model call failed; the attempt ended here)"
    if kind == "elided":
        return f"-- context: elided {record.get('n_results', 0)} old tool outputs"
    if kind == "unreadable":
        return f"!! line {record.get('line')} is unreadable (torn write?): {record.get('text', '')[:80]}"
    return f"-- {kind}: {json.dumps(record, default=str)[:max_chars]}"


def _render_model(record: dict[str, Any]) -> str:
    usage = record.get("usage") or {}
    cost = record.get("cost_usd")
    cost_text = "cost " + usd(cost if isinstance(cost, int | float) else None)
    head = (
        f"\n-- step {record.get('step')} ({record.get('seconds', 0):.1f} s; "
        f"{usage.get('input_tokens', 0)} in, {usage.get('cache_read_tokens', 0)} cached, "
        f"{usage.get('output_tokens', 0)} out; {cost_text})"
    )
    message = record.get("message") or {}
    parts = [head]
    if record.get("format_error"):
        parts.append(f"!! format error: {record['format_error']}")
    if message.get("text"):
        parts.append(f"assistant: {message['text']}")
    for call in message.get("tool_calls", []):
        parts.append(f"  > {call.get('name')} {_call_text(call)}")
    return "\n".join(parts)


def _call_text(call: dict[str, Any]) -> str:
    args = call.get("arguments") or {}
    if call.get("name") == "bash" and isinstance(args.get("command"), str):
        return f"$ {args['command']}"
    return json.dumps(args, ensure_ascii=False)[:500]


def _render_result(result: dict[str, Any], max_chars: int) -> str:
    mark = "error" if result.get("is_error") else "ok"
    content = _clip(str(result.get("content", "")), max_chars)
    body = "\n".join(f"    {line}" for line in content.splitlines())
    return f"  < {mark} ({result.get('seconds', 0):.2f} s)\n{body}"


def _render_end(record: dict[str, Any]) -> str:
    cost = record.get("cost_usd")
    cost_text = "cost " + usd(cost if isinstance(cost, int | float) else None)
    usage = record.get("usage") or {}
    tokens = sum(int(v) for v in usage.values() if isinstance(v, int))
    error = f"\nerror: {record['error']}" if record.get("error") else ""
    return (
        f"\n== ended: {record.get('exit_status')} after {record.get('steps')} steps, "
        f"{record.get('model_calls')} model calls, {tokens} tokens, {cost_text}{error}\n"
        f"summary: {record.get('summary', '')}"
    )


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}\n[... {len(text) - max_chars} more characters]"
