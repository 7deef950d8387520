"""The league table: per task kind, model and repo, how often tasks are accepted, at what cost and speed.

`league(report)` is a pure function of a `RunReport` (folded from the queue file). What each column counts
(docs/reports.md#league-table says it for users):

- A *try* is an attempt that ended with a verdict, accepted or rejected. Re-runs after an infrastructure
  failure, released, cancelled, lost and running attempts say nothing about the model: they are no tries,
  but what they cost is counted.
- A row holds the attempts of one (task kind, model the attempt used, task's repo).
- tasks: tasks with a try in the row; accepted: those whose accepted try is in it.
- attempts per accepted task: tries / accepted. median minutes: the median try, claim to end.
- cost per accepted task: what every attempt in the row cost / accepted; an unknown part stays unknown.
- cached input: prompt tokens read from the cache / all prompt tokens, over the attempts whose usage has
  prompt tokens; unknown when none has (scripted models, older records).
- top rejecting gate: the gate that failed (or errored) in most rejected tries, ties by name.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from agent_runner.core.cost import UNKNOWN, CostTotal
from agent_runner.report.fold import Attempt, RunReport

HEADERS = (
    "kind", "model", "repo", "tasks", "accepted", "tries/acc", "median min", "spent", "cost/acc",
    "cached in", "top reject",
)  # fmt: skip
FIGURE_COLUMNS = range(3, 10)  # right-aligned, never wrapped
TRY_OUTCOMES = ("accepted", "rejected")
FAILED_VERDICTS = ("fail", "error")
Key = tuple[str, str, str]  # kind, model, repo


@dataclass(frozen=True)
class LeagueRow:
    """One line of the league table."""

    kind: str
    model: str
    repo: str
    n_tasks: int
    n_accepted: int
    n_tries: int
    median_minutes: float | None
    cost: CostTotal  # of every attempt in the row
    n_cached_tokens: int
    n_prompt_tokens: int  # 0: no attempt in the row recorded prompt tokens (cached share unknown)
    top_gate: str | None
    n_top_gate: int

    @property
    def accepted_share(self) -> float | None:
        """Accepted tasks / tasks (None: no task had a try)."""
        return self.n_accepted / self.n_tasks if self.n_tasks else None

    @property
    def tries_per_accepted(self) -> float | None:
        """Tries / accepted tasks (None: none accepted)."""
        return self.n_tries / self.n_accepted if self.n_accepted else None

    @property
    def cost_per_accepted(self) -> CostTotal | None:
        """The row's cost / accepted tasks, its unknown part kept (None: none accepted)."""
        if not self.n_accepted:
            return None
        return CostTotal(self.cost.known_usd / self.n_accepted, self.cost.n_unknown)

    @property
    def cached_share(self) -> float | None:
        """Cached prompt tokens / all prompt tokens (None: unknown, no prompt tokens recorded)."""
        return self.n_cached_tokens / self.n_prompt_tokens if self.n_prompt_tokens else None

    def cells(self) -> list[str]:
        """Return the row as the table shows it (the CLI and the HTML report): `-` undefined, `unknown`."""
        share, per, cached = self.accepted_share, self.cost_per_accepted, self.cached_share
        return [
            self.kind, self.model, self.repo, str(self.n_tasks),
            f"{self.n_accepted} ({share:.0%})" if share is not None else "-",
            _fixed(self.tries_per_accepted), _fixed(self.median_minutes),
            self.cost.text(), per.text() if per is not None else "-",
            f"{cached:.0%}" if cached is not None else UNKNOWN,
            f"{self.top_gate} ({self.n_top_gate})" if self.top_gate else "-",
        ]  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """Return the row for `stats --json`: null for what is unknown or undefined."""
        per = self.cost_per_accepted
        return {
            "kind": self.kind, "model": self.model, "repo": self.repo,
            "tasks": self.n_tasks, "accepted": self.n_accepted, "accepted_share": _round(self.accepted_share),
            "attempts": self.n_tries, "attempts_per_accepted": _round(self.tries_per_accepted),
            "median_minutes": _round(self.median_minutes),
            "cost_usd": _round(self.cost.usd, 6), "known_cost_usd": round(self.cost.known_usd, 6),
            "n_unknown_cost": self.cost.n_unknown,
            "cost_per_accepted_usd": _round(per.usd, 6) if per is not None else None,
            "cached_input_share": _round(self.cached_share),
            "top_rejecting_gate": self.top_gate, "n_top_rejecting_gate": self.n_top_gate,
        }  # fmt: skip


def _fixed(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class _Tally:
    """What one row gathers while the attempts are walked."""

    tasks: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    minutes: list[float] = field(default_factory=list)
    cost: CostTotal = field(default_factory=CostTotal)
    cached: int = 0
    prompt: int = 0
    gates: Counter[str] = field(default_factory=Counter)

    def add(self, attempt: Attempt) -> None:
        if attempt.result is not None:  # an attempt without a result spent nothing we know of
            self.cost.add(attempt.cost_usd)
            self._tokens(attempt.result)
        if attempt.outcome not in TRY_OUTCOMES:
            return
        self.tasks.add(attempt.task_id)
        self.minutes.append(attempt.duration / 60)
        if attempt.outcome == "accepted":
            self.accepted.add(attempt.task_id)
        else:
            self.gates.update(_failed_gates(attempt.result))

    def _tokens(self, result: dict[str, Any]) -> None:
        usage = result.get("usage")
        if not isinstance(usage, dict):
            return
        counts = {
            k: _count(usage.get(k)) for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens")
        }
        self.prompt += sum(counts.values())
        self.cached += counts["cache_read_tokens"]

    def row(self, key: Key) -> LeagueRow:
        top = min(self.gates.items(), key=lambda item: (-item[1], item[0]), default=None)
        return LeagueRow(
            *key, n_tasks=len(self.tasks), n_accepted=len(self.accepted), n_tries=len(self.minutes),
            median_minutes=statistics.median(self.minutes) if self.minutes else None, cost=self.cost,
            n_cached_tokens=self.cached, n_prompt_tokens=self.prompt,
            top_gate=top[0] if top else None, n_top_gate=top[1] if top else 0,
        )  # fmt: skip


def _count(value: object) -> int:
    """A token count from a stored record (untrusted: anything but a non-negative int counts 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _failed_gates(result: dict[str, Any] | None) -> set[str]:
    gates = (result or {}).get("gates")
    if not isinstance(gates, list):
        return set()
    return {
        str(g.get("name"))[:80] for g in gates if isinstance(g, dict) and g.get("verdict") in FAILED_VERDICTS
    }


def league(report: RunReport) -> list[LeagueRow]:
    """Return the league table of a report: one row per (kind, model, repo) with an ended attempt.

    Sorted by kind and repo, then the higher accepted share first, then the model.
    """
    of_task = {row.id: (row.kind, row.repo) for row in report.tasks}
    tallies: dict[Key, _Tally] = defaultdict(_Tally)
    for attempt in report.attempts:
        if attempt.end is None:
            continue  # still running
        kind, repo = of_task.get(attempt.task_id, ("?", "?"))
        tallies[(kind, attempt.model_label or "unknown", repo)].add(attempt)
    rows = [tally.row(key) for key, tally in tallies.items()]
    return sorted(rows, key=lambda r: (r.kind, r.repo, -(r.accepted_share or 0.0), r.model))
