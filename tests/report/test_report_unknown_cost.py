"""The report and `status` say unknown for an unknown cost, and a total with an unknown part says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_report_truth import render, row_html

from agent_runner.core.task import Task
from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report


def queue_of(path: Path, results: dict[str, dict[str, Any]]) -> Queue:
    """A queue whose tasks each finished once with the given result record."""
    queue = Queue(path)
    for task_id, result in results.items():
        queue.add(Task(id=task_id, kind="change", instructions="x"))
        claim = queue.claim("local-1", lease_s=60, accept=lambda s, task_id=task_id: s.id == task_id)
        assert claim is not None
        queue.finish(task_id, claim.attempt, {"outcome": "accepted", **result})
    return queue


def test_a_total_with_an_unknown_part_says_so(tmp_path: Path) -> None:
    """$0.42 priced plus a null cost: the total reads `$0.4200 + unknown`, the row `unknown`."""
    priced = {"model": "anthropic:claude-sonnet-4-5", "model_calls": 1, "cost_usd": 0.42}
    local = {"model": "openai:gemma-3-270m", "model_calls": 3, "cost_usd": None}
    queue = queue_of(tmp_path / "queue.jsonl", {"paid": priced, "local": local})
    report = build_report(queue)
    assert report.cost.text() == "$0.4200 + unknown" and report.total_cost == 0.42
    data = report.to_json()
    assert data["cost_usd"] is None and data["known_cost_usd"] == 0.42 and data["n_unknown_cost"] == 1
    text = render(queue, tmp_path)
    assert '<div class="num">$0.4200 + unknown</div>' in text
    assert '<td class="num">unknown</td>' in row_html(text, "local")
    assert '<td class="num">$0.4200</td>' in row_html(text, "paid")


def test_an_older_record_without_the_field_reads_by_its_model_calls(tmp_path: Path) -> None:
    """Older queue files left out an unknown cost: with model calls it is unknown, without it was $0."""
    called = {"model": "openai:local", "model_calls": 2}
    keyless = {"model": "anthropic:claude-sonnet-4-5", "model_calls": 0, "steps": 0}
    queue = queue_of(tmp_path / "queue.jsonl", {"called": called, "keyless": keyless})
    rows = {row.id: row for row in build_report(queue).tasks}
    assert rows["called"].cost.usd is None and rows["keyless"].cost.usd == 0.0
    assert queue.states["called"].cost.text() == "unknown"
    assert queue.states["keyless"].cost.text() == "$0.0000"
