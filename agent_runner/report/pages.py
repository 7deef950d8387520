"""Trajectories in the report: small ones inline, large ones as pages beside it (rewritten only on change)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from agent_runner.report.fold import Attempt, TaskRow
from agent_runner.worker.trajectory import is_trajectory_file, read_trajectory

INLINE_TRAJECTORY_BYTES = 64_000  # a task whose trajectories are larger than this gets its own page
INLINE_TOTAL_BYTES = 1_000_000  # and so does every task once this much is inlined
OUTPUT_CHARS = 4000
LONG_TEXT = 600


@dataclass(slots=True)
class Step:
    """One trajectory record, flattened for the template."""

    kind: str
    title: str = ""
    meta: str = ""
    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)
    is_error: bool = False

    @property
    def is_long(self) -> bool:
        """Whether the text should start collapsed."""
        return len(self.text) > LONG_TEXT


def _usd(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "cost unknown"


def _clip(text: str) -> str:
    extra = len(text) - OUTPUT_CHARS
    return text if extra <= 0 else f"{text[:OUTPUT_CHARS]}\n[... {extra} more characters]"


def _call(call: dict[str, Any]) -> tuple[str, str]:
    args = call.get("arguments") or {}
    if call.get("name") == "bash" and isinstance(args.get("command"), str):
        return "bash", f"$ {args['command']}"
    return str(call.get("name")), json.dumps(args, ensure_ascii=False)[:500]


def steps(record: dict[str, Any]) -> list[Step]:
    """Flatten one trajectory record (see agent_runner.worker.trajectory) into display steps."""
    kind = record.get("type")
    if kind == "start":
        limits = "; ".join(f"{k}={v}" for k, v in (record.get("limits") or {}).items() if v is not None)
        meta = f"model {record.get('model', '?')}" + (f"; {limits}" if limits else "")
        return [Step("start", "Run started", meta, _clip(str(record.get("system", ""))))]
    if kind == "user":
        return [Step("user", "User", text=_clip(str(record.get("text", ""))))]
    if kind == "model":
        return [_model_step(record)]
    if kind == "tools":
        return [_output(result) for result in record.get("results") or []]
    if kind == "end":
        meta = f"after {record.get('steps')} steps, {record.get('model_calls')} model calls, "
        text = f"{record.get('error', '')}\n{record.get('summary', '')}".strip()
        return [Step("end", f"Ended: {record.get('exit_status')}", meta + _usd(record.get("cost_usd")), text)]
    if kind == "aborted":  # the model call failed: the attempt's own last record (kind "end": it did end)
        return [Step("end", "Aborted", "the model call failed", str(record.get("error", "")), is_error=True)]
    if kind == "elided":
        return [Step("note", meta=f"context: elided {record.get('n_results', 0)} old tool outputs")]
    if kind == "unreadable":
        return [Step("note", meta=f"line {record.get('line')} is unreadable (torn write?)", is_error=True)]
    return [Step("note", meta=f"{kind}: {json.dumps(record, default=str)[:500]}")]


def _model_step(record: dict[str, Any]) -> Step:
    usage = record.get("usage") or {}
    meta = (
        f"{record.get('seconds') or 0:.1f} s · {usage.get('input_tokens', 0)} in, "
        f"{usage.get('cache_read_tokens', 0)} cached, {usage.get('output_tokens', 0)} out · "
        f"{_usd(record.get('cost_usd'))}"
    )
    message = record.get("message") or {}
    error = f"format error: {record['format_error']}\n" if record.get("format_error") else ""
    calls = [_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return Step(
        "model", f"Step {record.get('step', '')}", meta, error + str(message.get("text") or ""), calls
    )


def _output(result: dict[str, Any]) -> Step:
    content = str(result.get("content", ""))
    meta = f"{result.get('seconds') or 0:.2f} s, {len(content)} characters"
    is_error = bool(result.get("is_error"))
    return Step("output", "error" if is_error else "output", meta, _clip(content), is_error=is_error)


def _read(path: Path) -> list[Step]:
    return [step for record in read_trajectory(path) for step in steps(record)]


class TrajectoryPages:
    """Decides, per task, whether its trajectories are inlined in the report or written as a linked page."""

    def __init__(
        self, env: jinja2.Environment, *, root: Path, state_dir: Path, out: Path, redact: Callable[[str], str]
    ) -> None:
        self.env, self.root, self.redact = env, root, redact
        self.runs = state_dir / "runs"
        self.pages_dir = out.parent / f"{out.stem}-tasks"
        self.report_name = out.name
        self.inlined = 0
        self.with_runs = {e.name for e in os.scandir(self.runs)} if self.runs.is_dir() else set()

    def for_task(self, row: TaskRow) -> dict[str, Any]:
        """Return {"inline": html | None, "page": link relative to the report | None} for one task."""
        found = [(a, p) for a in row.attempts if (p := self._path(a))]
        if not found:
            return {"inline": None, "page": None}
        stats = [p.stat() for _, p in found]
        size = sum(s.st_size for s in stats)
        if size <= INLINE_TRAJECTORY_BYTES and self.inlined + size <= INLINE_TOTAL_BYTES:
            self.inlined += size
            return {"inline": self._body(row, found), "page": None}
        return {"inline": None, "page": self._page(row, found, stats)}

    def _body(self, row: TaskRow, found: list[tuple[Attempt, Path]]) -> str:
        items = [(a, _read(p)) for a, p in found]
        return Markup(self.env.get_template("trajectory.html.j2").render(row=row, items=items))

    def _page(self, row: TaskRow, found: list[tuple[Attempt, Path]], stats: list[os.stat_result]) -> str:
        page = self.pages_dir / f"{row.id}.html"
        parts = [row.status, row.reason, row.pr_url, *(f"{s.st_mtime_ns}:{s.st_size}" for s in stats)]
        stamp = "<!-- key " + hashlib.sha256(repr(parts).encode()).hexdigest()[:16] + " -->\n"
        if not _starts_with(page, stamp):  # unchanged trajectories and status: keep the page already written
            body = self._body(row, found)
            text = self.env.get_template("task_page.html.j2").render(
                row=row, body=body, report=self.report_name
            )
            self.pages_dir.mkdir(parents=True, exist_ok=True)
            page.write_text(self.redact(text.replace("\n", "\n" + stamp, 1)), encoding="utf-8")
        return f"{self.pages_dir.name}/{page.name}"

    def _path(self, a: Attempt) -> Path | None:
        if a.trajectory:
            recorded = self.root / a.trajectory
            if is_trajectory_file(recorded):
                return recorded
        if a.task_id not in self.with_runs:
            return None
        local = self.runs / a.task_id / str(a.attempt) / "trajectory.jsonl"
        return local if local.is_file() else None


def _starts_with(path: Path, stamp: str) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            fh.readline()
            return fh.readline() == stamp
    except OSError:
        return False
