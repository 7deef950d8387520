"""What a run did, folded from the queue file: attempts per machine lane, costs, tokens, gates, trajectories.

`build_report(queue, ...)` reads the events once and returns a `RunReport`; `report_html.write_report`
renders it and `status` summarises it for the terminal.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from agent_runner.core.cost import CostTotal, result_cost
from agent_runner.core.findings import answer_of
from agent_runner.core.task import TaskStatus
from agent_runner.queue.state import Event, EventType, TaskState
from agent_runner.queue.store import Queue
from agent_runner.report.labels import is_recorded, model_used

SNAPSHOT_OUTCOMES = {
    "finished": "accepted",
    "unpublished": "accepted",
    "failed": "rejected",
    "cancelled": "cancelled",
}
END_TYPES = {EventType.FINISHED, EventType.FAILED, EventType.RELEASED, EventType.CANCELLED}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass
class Attempt:
    """One attempt of one task: from its claim to the event that ended it."""

    task_id: str
    attempt: int
    worker: str
    machine: str
    start: float
    end: float | None = None
    outcome: str = "running"
    reason: str = ""
    model: str = ""
    steps: int = 0
    cost_usd: float | None = 0.0  # None: unknown (a model with no price)
    tokens: dict[str, int] = field(default_factory=dict)
    trajectory: str | None = None
    seen: float = 0.0
    result: dict[str, Any] | None = field(default=None, repr=False)
    model_label: str = ""

    @property
    def duration(self) -> float:
        """Seconds from claim to end (to now while running)."""
        return max(0.0, (self.end if self.end is not None else time.time()) - self.start)

    @property
    def last(self) -> float:
        """The end, or for a running attempt the last time the queue file heard of the run."""
        return self.end if self.end is not None else max(self.start, self.seen)


@dataclass
class GateRow:
    """One gate of a task's last result: the measurement before the agent and after."""

    name: str
    verdict: str
    before: dict[str, float]
    after: dict[str, float]


@dataclass
class TaskRow:
    """One line of the task table."""

    id: str
    kind: str
    title: str
    status: str
    reason: str
    attempts: list[Attempt] = field(default_factory=list)
    gates: list[GateRow] = field(default_factory=list)
    pr_url: str | None = None
    cost: CostTotal = field(default_factory=CostTotal)
    tokens: dict[str, int] = field(default_factory=dict)
    model: str = ""
    n_attempts_used: int = 0
    max_attempts: int = 3
    verdict: str | None = None
    n_findings: int = 0
    repo: str = "."  # the task's `repo` field; "." is the repo holding tasks/

    @property
    def total_tokens(self) -> int:
        """Input, output and cache tokens of every attempt."""
        return sum(self.tokens.values())


@dataclass
class RunReport:
    """Everything the HTML report and `status` show."""

    queue_path: str
    generated_at: float
    tasks: list[TaskRow]
    attempts: list[Attempt]
    budget_usd: float | None = None

    @property
    def total_cost(self) -> float:
        """Spend of every recorded attempt of known cost, in US dollars (what a budget counts)."""
        return self.cost.known_usd

    @property
    def cost(self) -> CostTotal:
        """Spend of every recorded attempt: the known part and how many were of unknown cost."""
        return _cost_of(self.attempts)

    @property
    def total_tokens(self) -> int:
        """Tokens in and out of every attempt."""
        return sum(sum(a.tokens.values()) for a in self.attempts)

    @property
    def n_model_calls(self) -> int:
        """Model calls the attempts' results report."""
        return sum(int((a.result or {}).get("model_calls") or 0) for a in self.attempts)

    @property
    def is_recorded(self) -> bool:
        """Whether some attempt replayed a recorded session: its cost and tokens were recorded, not billed."""
        return any(is_recorded(a.model) for a in self.attempts)

    def lanes(self) -> dict[str, list[str]]:
        """Machines (sorted) and the workers seen on each."""
        lanes: dict[str, set[str]] = defaultdict(set)
        for a in self.attempts:
            lanes[a.machine].add(a.worker)
        return {m: sorted(lanes[m]) for m in sorted(lanes)}

    def counts(self) -> dict[str, int]:
        """Number of tasks by status (every status listed, zeros included)."""
        counts = {s.value: 0 for s in TaskStatus}
        for row in self.tasks:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    def by_model(self) -> dict[str, dict[str, float]]:
        """Cost and tokens per model."""
        out: dict[str, dict[str, float]] = defaultdict(
            lambda: dict.fromkeys(("cost_usd", *TOKEN_FIELDS), 0.0)
        )
        for a in self.attempts:
            entry = out[a.model_label or "unknown"]
            entry["cost_usd"] += a.cost_usd or 0.0
            for key in TOKEN_FIELDS:
                entry[key] += a.tokens.get(key, 0)
        return dict(sorted(out.items()))

    def cache_read_share(self) -> float | None:
        """Cached prompt tokens as a share of all prompt tokens (None when nothing was read)."""
        totals = {k: sum(a.tokens.get(k, 0) for a in self.attempts) for k in TOKEN_FIELDS}
        prompt = totals["input_tokens"] + totals["cache_read_tokens"] + totals["cache_write_tokens"]
        return totals["cache_read_tokens"] / prompt if prompt else None

    def machine_load(self) -> dict[str, dict[str, float]]:
        """Per machine: attempts run, attempts running now, busy seconds."""
        load: dict[str, dict[str, float]] = {
            m: {"attempts": 0, "running": 0, "busy_s": 0.0} for m in self.lanes()
        }
        for a in self.attempts:
            load[a.machine]["attempts"] += 1
            load[a.machine]["running"] += a.outcome == "running"
            load[a.machine]["busy_s"] += a.duration
        return load

    def slowest(self, n: int = 5) -> list[Attempt]:
        """The `n` longest attempts."""
        return sorted(self.attempts, key=lambda a: a.duration, reverse=True)[:n]

    def to_json(self) -> dict[str, Any]:
        """Return the status summary as JSON-ready data (for `status --json`)."""
        return {
            "queue": self.queue_path,
            "counts": self.counts(),
            "cost_usd": None if self.cost.n_unknown else round(self.total_cost, 6),  # null: unknown
            "known_cost_usd": round(self.total_cost, 6),
            "n_unknown_cost": self.cost.n_unknown,
            "budget_usd": self.budget_usd,
            "cache_read_share": self.cache_read_share(),
            "machines": self.machine_load(),
            "slowest": [_attempt_json(a) for a in self.slowest()],
        }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    data = {f.name: getattr(attempt, f.name) for f in fields(attempt) if f.name != "result"}
    return data | {"duration_s": round(attempt.duration, 3)}


def machine_of(event: Event, result: dict[str, Any] | None) -> str:
    """The lane of a claim: its `machine`, else the worker name up to the first '/'."""
    if event.get("machine"):
        return str(event["machine"])
    worker = str(event.get("worker") or (result or {}).get("machine") or "unknown")
    return worker.split("/", 1)[0]


class _Folder:
    """Walks the events once, opening an attempt at each claim and closing it at its end event."""

    def __init__(self) -> None:
        self.open: dict[str, tuple[Attempt, Event]] = {}
        self.attempts: list[Attempt] = []
        self.last_ts = 0.0

    def feed(self, event: Event) -> None:
        kind, task_id = event.get("type"), event.get("task")
        if not isinstance(task_id, str):
            return
        self.last_ts = max(self.last_ts, _ts(event.get("ts")))
        if kind == EventType.CLAIMED:
            self._close(task_id, event, "lost", "claimed again before this attempt ended")
            attempt = Attempt(task_id, int(event.get("attempt") or 1), str(event.get("worker") or "unknown"),
                              machine_of(event, None), _ts(event.get("ts")))  # fmt: skip
            self.open[task_id] = (attempt, event)
            self.attempts.append(attempt)
        elif kind in END_TYPES:
            self._close(task_id, event, _outcome(event), str(event.get("reason") or ""))
        elif kind == EventType.SNAPSHOT:
            self._snapshot(event)

    def _close(self, task_id: str, event: Event, outcome: str, reason: str) -> None:
        opened = self.open.pop(task_id, None)
        if opened is None:
            return
        attempt, claim = opened
        attempt.end, attempt.outcome, attempt.reason = (
            _ts(event.get("ts"), attempt.start),
            outcome,
            reason,
        )
        result = event.get("result")
        if isinstance(result, dict):
            _apply_result(attempt, result)
            if not claim.get("machine") and result.get("machine") and "/" not in attempt.worker:
                attempt.machine = str(result["machine"]).split("/", 1)[0]

    def _snapshot(self, event: Event) -> None:
        state = event.get("state") or {}
        if not state.get("claimed_at") or not state.get("worker"):
            return  # a compacted file keeps only the last attempt of each task
        ts = _ts(event.get("ts"))
        claim = {"worker": state["worker"], "ts": state["claimed_at"], "attempt": state.get("attempt", 1)}
        attempt = Attempt(state["id"], int(claim["attempt"]), str(state["worker"]), machine_of(claim, None),
                          _ts(state["claimed_at"]))  # fmt: skip
        if isinstance(state.get("result"), dict):
            _apply_result(attempt, state["result"])
        if state.get("status") == "running":
            self.open[attempt.task_id] = (attempt, claim)
        else:
            status = str(state.get("status"))
            attempt.end, attempt.outcome = ts, SNAPSHOT_OUTCOMES.get(status, status)
        self.attempts.append(attempt)


def _outcome(event: Event) -> str:
    kind = event.get("type")
    result = event.get("result")
    if kind == EventType.FINISHED:
        return "accepted"
    if kind == EventType.FAILED:
        return str(result.get("outcome") or "rejected") if isinstance(result, dict) else "rejected"
    if kind == EventType.RELEASED:
        if isinstance(result, dict) and result.get("outcome") == "paused":  # a budget paused it
            return "paused"
        return "infra" if event.get("infra", True) else "released"
    return "cancelled"


def _apply_result(attempt: Attempt, result: dict[str, Any]) -> None:
    attempt.result = result
    attempt.model = str(result.get("model") or attempt.model)
    attempt.steps = _count(result.get("steps"))
    attempt.cost_usd = result_cost(result)
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    attempt.tokens = {k: _count(usage.get(k)) for k in TOKEN_FIELDS}
    path = result.get("trajectory_path")
    attempt.trajectory = path if isinstance(path, str) and path else attempt.trajectory


def _count(value: object) -> int:
    """A count from a stored result (read back, not trusted): anything but a non-negative int counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _ts(value: object, default: float = 0.0) -> float:
    """A time from a queue line: a finite number, else `default` (NaN and Infinity parse as JSON numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


def _task_row(state: TaskState, attempts: list[Attempt]) -> TaskRow:
    task, result = state.task, state.result_json or {}  # the result as stored, like the attempts' results
    row = TaskRow(
        id=state.id, kind=task.kind.value if task else "?", title=task.title if task else "",
        status=state.status.value, reason=state.reason, attempts=attempts, pr_url=state.pr_url,
        n_attempts_used=state.n_attempts_used, max_attempts=state.max_attempts,
        repo=(task.repo or ".") if task else "?",
    )  # fmt: skip
    planned = (task.model if task else None) or (attempts[-1].model if attempts else "")
    row.model = model_used(state.result_json, kind=row.kind, planned=planned)
    answer = answer_of(result) if row.kind == "review" and result else None
    if answer is not None:
        row.verdict, row.n_findings = answer.verdict, len(answer.findings)
    row.gates = [_gate_row(g) for g in result.get("gates") or [] if isinstance(g, dict)]
    row.cost = _cost_of(attempts)
    row.tokens = {k: sum(a.tokens.get(k, 0) for a in attempts) for k in TOKEN_FIELDS}
    return row


def _cost_of(attempts: list[Attempt]) -> CostTotal:
    total = CostTotal()
    for attempt in attempts:
        total.add(attempt.cost_usd)
    return total


def _gate_row(gate: dict[str, Any]) -> GateRow:
    return GateRow(str(gate.get("name", "?")), str(gate.get("verdict", "?")),
                   _figures(gate.get("before")), _figures(gate.get("after")))  # fmt: skip


def _figures(value: object) -> dict[str, float]:
    """A gate's measurement from a stored result (read back, not trusted): an object, else none."""
    return dict(value) if isinstance(value, dict) else {}


def build_report(
    queue: Queue, *, budget_usd: float | None = None, default_model: str = "", now: float | None = None
) -> RunReport:
    """Fold the queue file's events into task states, attempts and task rows."""
    folder = _Folder()
    for event in queue.events():  # the events the queue's fold accepted; it leaves their states in .states
        folder.feed(event)
    states = queue.states
    per_task: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in folder.attempts:
        per_task[attempt.task_id].append(attempt)
    for attempt in folder.attempts:
        attempt.seen = folder.last_ts
        state = states.get(attempt.task_id)
        task = state.task if state else None
        attempt.model = attempt.model or (task.model if task else None) or default_model or ""
        kind = task.kind.value if task else ""
        attempt.model_label = model_used(attempt.result, kind=kind, planned=attempt.model)
    rows = [_task_row(state, per_task.get(task_id, [])) for task_id, state in states.items()]
    return RunReport(str(queue.path), now or time.time(), rows, folder.attempts, budget_usd=budget_usd)
