"""The report tells what happened: attempts used, the model used, a review's verdict, no empty charts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from agent_runner.queue import Queue
from agent_runner.report import build_report
from agent_runner.report_html import write_report

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
    from agent_runner.task import Task

    (tmp_path / ".git").mkdir()
    (tmp_path / "tasks").mkdir()
    queue = Queue(tmp_path / "tasks" / "queue.jsonl")
    queue.add(Task(id="t1", kind="change", instructions="x"))
    assert queue.claim("box[gpu]/1", lease_s=60) is not None
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "status"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "box[gpu]/1" in result.output
