"""The league table (`run-agents stats`, the report's section) from a queue file with known figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent_runner.core.cost import CostTotal
from agent_runner.core.task import Task
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import render_report
from agent_runner.report.stats import LeagueRow, league

SONNET = "anthropic:claude-sonnet-4-5"
LOCAL = "openai:local"
SCRIPTED = "scripted:s1.yaml"
T0 = 1_800_000_000.0
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class Clock:
    """A clock the test moves by hand: every event's time is known."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _result(
    model: str, outcome: str, cost: float | None, *, fails: tuple[str, ...] = (), **usage: int
) -> dict:
    gates = [{"name": name, "verdict": "fail"} for name in fails] + [
        {"name": "diff-policy", "verdict": "pass"}
    ]
    return {
        "outcome": outcome, "model": model, "model_calls": 2, "steps": 3, "cost_usd": cost, "gates": gates,
        "usage": {**dict.fromkeys(TOKENS, 0), "output_tokens": 10, **usage},
    }  # fmt: skip


# Each task: its kind, repo and attempts as (minutes, how it ends, result record).
PLANS: dict[str, tuple[str, str | None, list[tuple[float, str, dict[str, Any] | None]]]] = {
    "a1": ("change", None, [
        (2, "fail",
         _result(SONNET, "rejected", 0.25, fails=("tests",), input_tokens=100, cache_read_tokens=300)),
        (4, "finish", _result(SONNET, "accepted", 0.5, input_tokens=100, cache_read_tokens=100)),
    ]),
    "a2": ("change", None, [(6, "finish", _result(SONNET, "accepted", 0.125, input_tokens=200))]),
    "a3": ("change", None, [
        (1, "release", _result(SONNET, "infra", 0.125, input_tokens=200)),  # no try, but it cost
        (8, "fail", _result(SONNET, "rejected", 0.0, fails=("tests", "lint-touched"))),
        (9, "fail", _result(SONNET, "rejected", 0.0, fails=("lint-touched",))),
    ]),
    "b1": ("change", None, [(3, "finish", _result(LOCAL, "accepted", None, input_tokens=50))]),
    "c1": ("fix-lint", "../other", [
        (1, "fail", _result(SONNET, "rejected", 0.25, fails=("lint-targets",))),
        (1, "fail", _result(SONNET, "rejected", None, fails=("lint-targets",))),
    ]),
    "s1": ("change", None, [(5, "finish", _result(SCRIPTED, "accepted", 0.0))]),  # records no tokens
}  # fmt: skip


def write_queue(path: Path) -> Queue:
    """Record every plan through the Queue API, one task at a time, with the clock moved by hand."""
    clock = Clock()
    queue = Queue(path, clock=clock)
    for task_id, (kind, repo, attempts) in PLANS.items():
        queue.add(Task(id=task_id, kind=kind, instructions="x", repo=repo, max_attempts=2))
        for minutes, end, result in attempts:
            claim = queue.claim("local-1", lease_s=1e6, accept=lambda s, task_id=task_id: s.id == task_id)
            assert claim is not None
            clock.now += 60 * minutes
            if end == "finish":
                queue.finish(task_id, claim.attempt, result or {})
            elif end == "fail":
                queue.fail(task_id, claim.attempt, "gates failed", result=result)
            else:
                queue.release(task_id, claim.attempt, "network down", result=result)
    return queue


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return write_queue(tmp_path / "tasks" / "queue.jsonl")


def test_rows_hold_the_known_figures(queue: Queue) -> None:
    """Tries, accepted share, median minutes, cost, cached share and top gate: exactly what was recorded."""
    rows = league(build_report(queue))
    assert rows == [
        LeagueRow("change", LOCAL, ".", n_tasks=1, n_accepted=1, n_tries=1, median_minutes=3.0,
                  cost=CostTotal(0.0, 1), n_cached_tokens=0, n_prompt_tokens=50, top_gate=None, n_top_gate=0),
        LeagueRow("change", SCRIPTED, ".", n_tasks=1, n_accepted=1, n_tries=1, median_minutes=5.0,
                  cost=CostTotal(0.0, 0), n_cached_tokens=0, n_prompt_tokens=0, top_gate=None, n_top_gate=0),
        LeagueRow("change", SONNET, ".", n_tasks=3, n_accepted=2, n_tries=5, median_minutes=6.0,
                  cost=CostTotal(1.0, 0), n_cached_tokens=400, n_prompt_tokens=1000,
                  top_gate="lint-touched", n_top_gate=2),
        LeagueRow("fix-lint", SONNET, "../other", n_tasks=1, n_accepted=0, n_tries=2,
                  median_minutes=1.0, cost=CostTotal(0.25, 1), n_cached_tokens=0, n_prompt_tokens=0,
                  top_gate="lint-targets", n_top_gate=2),
    ]  # fmt: skip
    sonnet = rows[2]
    assert sonnet.accepted_share == pytest.approx(2 / 3) and sonnet.tries_per_accepted == 2.5
    assert sonnet.cost_per_accepted == CostTotal(0.5, 0) and sonnet.cached_share == 0.4


def test_unknown_costs_and_cache_read_as_unknown_never_as_zero(queue: Queue) -> None:
    """A local model's cost per accepted task is `unknown`, with a priced part `$x + unknown`; no tokens:
    the cached share is unknown."""
    cells = {(r.model, r.repo): r.cells() for r in league(build_report(queue))}
    assert cells[(LOCAL, ".")][7:9] == ["unknown", "unknown"]
    assert cells[(SONNET, ".")][4:11] == [
        "2 (67%)",
        "2.5",
        "6.0",
        "$1.0000",
        "$0.5000",
        "40%",
        "lint-touched (2)",
    ]
    assert cells[(SONNET, "../other")][4:11] == [
        "0 (0%)", "-", "1.0", "$0.2500 + unknown", "-", "unknown", "lint-targets (2)"
    ]  # fmt: skip
    assert cells[(SCRIPTED, ".")][8:10] == ["$0.0000", "unknown"]


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write_queue(root / "tasks" / "queue.jsonl")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _stats(root: Path, *args: str, columns: int = 200) -> Any:
    from typer.testing import CliRunner

    from agent_runner.cli import get_app

    env = {"COLUMNS": str(columns)}
    return CliRunner().invoke(get_app(), ["--root", str(root), "stats", *args], env=env)


def test_stats_json_shape(tmp_path: Path) -> None:
    """`stats --json`: the queue path and one object per row; null for what is unknown or undefined."""
    out = _stats(_project(tmp_path), "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert list(data) == ["queue", "rows"] and len(data["rows"]) == 4
    local, _, sonnet, other = data["rows"]
    assert list(sonnet) == [
        "kind", "model", "repo", "tasks", "accepted", "accepted_share", "attempts", "attempts_per_accepted",
        "median_minutes", "cost_usd", "known_cost_usd", "n_unknown_cost", "cost_per_accepted_usd",
        "cached_input_share", "top_rejecting_gate", "n_top_rejecting_gate",
    ]  # fmt: skip
    assert (sonnet["attempts"], sonnet["cost_per_accepted_usd"], sonnet["cached_input_share"]) == (
        5,
        0.5,
        0.4,
    )
    assert (local["cost_usd"], local["cost_per_accepted_usd"], local["n_unknown_cost"]) == (None, None, 1)
    assert (other["accepted_share"], other["attempts_per_accepted"], other["known_cost_usd"]) == (
        0.0,
        None,
        0.25,
    )


def test_stats_table_escapes_task_text(tmp_path: Path) -> None:
    """The table prints each row; a model label with rich markup is printed as written."""
    root = _project(tmp_path)
    queue = Queue(root / "tasks" / "queue.jsonl")
    queue.add(Task(id="odd", kind="change", instructions="x"))
    claim = queue.claim("local-1", lease_s=60, accept=lambda s: s.id == "odd")
    assert claim is not None
    queue.finish("odd", claim.attempt, _result("openai:[bold red]x[/]", "accepted", 0.0, input_tokens=5))
    out = _stats(root)
    assert out.exit_code == 0, out.output
    assert "League table" in out.output and "lint-touched (2)" in out.output
    assert "openai:[bold red]x[/]" in out.output


def test_a_narrow_terminal_gets_one_block_per_row(tmp_path: Path) -> None:
    """At 80 columns eleven columns would fold every word: each row is a block with its figures whole."""
    out = _stats(_project(tmp_path), columns=80)
    assert out.exit_code == 0, out.output
    assert "tries/acc 2.5" in out.output and "top reject lint-touched (2)" in out.output
    assert all(len(line) <= 80 for line in out.output.splitlines())


def test_the_html_report_has_the_league_section(queue: Queue, tmp_path: Path) -> None:
    """The report shows the same cells as `stats`, escaped."""
    queue.add(Task(id="odd", kind="review", instructions="x"))
    claim = queue.claim("local-1", lease_s=60, accept=lambda s: s.id == "odd")
    assert claim is not None
    queue.finish("odd", claim.attempt, _result("openai:<b>x</b>", "accepted", 0.0))
    html = render_report(
        build_report(queue), root=tmp_path, state_dir=tmp_path / "state", out=tmp_path / "r.html"
    )
    section = html.split('<section id="league">', 1)[1].split("</section>", 1)[0]
    assert section.count("<tr>") == 6  # the header and five rows
    assert "<td>openai:&lt;b&gt;x&lt;/b&gt;</td>" in section
    assert '<td class="num">$0.2500 + unknown</td><td class="num">-</td>' in section
    assert "<td>lint-touched (2)</td>" in section
