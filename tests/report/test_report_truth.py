"""The report tells what happened: attempts used, the model used, a review's verdict, no empty charts."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from agent_runner.queue.store import Queue
from agent_runner.report.fold import build_report
from agent_runner.report.html import write_report

FIXTURES = Path(__file__).parent / "fixtures"


def render(queue: Queue, tmp_path: Path) -> str:
    """Write the report of `queue` under tmp_path and return its HTML."""
    out = tmp_path / "report.html"
    write_report(build_report(queue), root=tmp_path, state_dir=tmp_path, out=out)
    return out.read_text(encoding="utf-8")


def row_html(text: str, task_id: str) -> str:
    """Return the table row of one task."""
    match = re.search(rf'<tr id="task-{task_id}".*?</tr>', text, flags=re.S)
    assert match, task_id
    return match.group(0)


def test_attempts_column_is_used_of_max(tmp_path: Path) -> None:
    """task-21 ran three times (infra, rejected, accepted): two attempts of three were used."""
    shutil.copy(FIXTURES / "queue.jsonl", tmp_path / "queue.jsonl")
    text = render(Queue(tmp_path / "queue.jsonl"), tmp_path)
    row = row_html(text, "task-21")
    assert "<b>2/3</b>" in row and 'title="attempt #1: infra"' in row


def test_status_prints_machine_and_worker_names_as_written(tmp_path: Path) -> None:
    """A worker named with brackets keeps them in `status` (rich markup would drop `[gpu]`)."""
    from typer.testing import CliRunner

    from agent_runner.cli import get_app
    from agent_runner.core.task import Task

    (tmp_path / ".git").mkdir()
    (tmp_path / "tasks").mkdir()
    queue = Queue(tmp_path / "tasks" / "queue.jsonl")
    queue.add(Task(id="t1", kind="change", instructions="x"))
    assert queue.claim("box[gpu]/1", lease_s=60) is not None
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "box[gpu]/1" in result.output


def keyless_queue(path: Path) -> Queue:
    """A keyless run: ruff alone finished a fix-lint task, a scripted model did a change and a review."""
    from agent_runner.core.task import Task
    from agent_runner.report.labels import RECORDED_SCRIPTS

    queue = Queue(path)
    findings = [{"file": "a.py", "line": 3, "explanation": "bug"}, {"file": "a.py", "explanation": "name"}]
    answer = json.dumps({"verdict": "request_changes", "findings": findings})
    script = "scripted:/very/long/path/to/feature.yaml"
    results = {
        "lint": ("fix-lint", {"model": "anthropic:claude-sonnet-5-5", "model_calls": 0, "steps": 0}),
        "feature": ("change", {"model": script, "model_calls": 2, "steps": 2}),
        "rev": ("review", {"model": f"scripted:{RECORDED_SCRIPTS / 'rev.yaml'}", "model_calls": 1, "steps": 1,
                           "summary": answer}),
    }  # fmt: skip
    for task_id, (kind, result) in results.items():
        queue.add(Task(id=task_id, kind=kind, instructions="x", model="anthropic:claude-sonnet-5-5"))
        claim = queue.claim("local-1", lease_s=60, accept=lambda s, task_id=task_id: s.id == task_id)
        assert claim is not None
        queue.finish(task_id, claim.attempt, {"outcome": "accepted", **result})
    return queue


def test_a_keyless_run_has_no_empty_charts(tmp_path: Path) -> None:
    """Without cost or tokens the report draws no chart: it says how many calls there were, or none."""
    text = render(keyless_queue(tmp_path / "queue.jsonl"), tmp_path)
    assert 'class="pygal-chart"' not in text
    assert "3 model call(s), none of which reported cost or tokens" in text
    (tmp_path / "empty").mkdir()
    assert "No model calls: nothing was spent." in render(
        Queue(tmp_path / "empty" / "q.jsonl"), tmp_path / "empty"
    )


def test_rows_name_the_model_used_shortly_and_a_reviews_verdict(tmp_path: Path) -> None:
    """Scripts are named by file (the demo's: recorded), ruff-only work by no model, a review by verdict."""
    text = render(keyless_queue(tmp_path / "queue.jsonl"), tmp_path)
    assert "<td>none: ruff only</td>" in row_html(text, "lint")
    assert "<td>scripted:feature.yaml</td>" in row_html(text, "feature") and "/very/long" not in text
    review = row_html(text, "rev")
    assert "<td>recorded:rev.yaml</td>" in review
    assert "review: <b>request_changes</b> (2 findings)" in review
    bars = re.findall(r'<a class="bar o-\w+" href="#task-(\w+)" title="[^"]*\n([^·]+) ·', text)
    assert dict(bars) == {
        "lint": "none: ruff only",
        "feature": "scripted:feature.yaml",
        "rev": "recorded:rev.yaml",
    }
