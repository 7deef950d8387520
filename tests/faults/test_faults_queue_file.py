"""The queue file's lines: a JSON line that does not fit the event schema, and events that cannot be true."""

from __future__ import annotations

import json

import pytest
from faults_helpers import Project, Scenario, git

WRONG_TYPES = [
    ({"type": "claimed", "task": "a", "attempt": "one", "worker": "w"}, "field 'attempt'"),
    ({"type": "claimed", "task": ["a"], "attempt": 1}, "field 'task'"),
    ({"type": "queued", "task": "z", "def": {"id": "z", "priority": "high"}}, "field 'def.priority'"),
    ({"type": "finished", "task": "a", "attempt": 1, "result": "ok"}, "field 'result'"),
    ({"type": "released", "task": "a", "attempt": 1, "not_before": "soon"}, "field 'not_before'"),
    ({"type": "snapshot", "task": "a", "state": {"id": "a", "status": "sleeping"}}, "field 'state.status'"),
    ({"type": "finshed", "task": "a", "attempt": 1}, "unknown event type 'finshed'"),
]


def _append(project: Project, *events: dict[str, object]) -> int:
    """Append events as lines of the queue file; return the line number of the first."""
    lines = project.queue_file.read_text(encoding="utf-8").splitlines()
    with open(project.queue_file, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"ts": 1.0, **event}) + "\n" for event in events)
    return len(lines) + 1


def _listed(project: Project) -> dict[str, dict[str, object]]:
    out = project.cli("list", "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return {row["id"]: row for row in json.loads(out.stdout)}


@pytest.mark.parametrize(("event", "what"), WRONG_TYPES, ids=[what for _, what in WRONG_TYPES])
def test_wrong_type_line_is_reported_and_the_rest_read(
    project: Project, scenario: Scenario, event: dict[str, object], what: str
) -> None:
    """A JSON line that does not fit the schema is reported (file:line) by list and run; the rest is read."""
    project.task("a", "scripted:none")
    assert project.cli("list").returncode == 0
    lineno = _append(project, event)
    project.task("b", "scripted:none")
    where = f"queue.jsonl:{lineno}: "
    out = project.cli("list")
    scenario.outcome = f"list exit {out.returncode}"
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert where in out.stderr and what in out.stderr, out.stderr
    rows = _listed(project)
    assert {task_id: row["status"] for task_id, row in rows.items()} == {"a": "queued", "b": "queued"}
    before = project.events()
    run = project.cli("run")
    scenario.outcome = f"run exit {run.returncode}"
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"Error: {project.queue_file}:{lineno}: " in run.stderr.replace("\n", "") and what in run.stderr
    assert project.events() == before, "run must not start with a line it cannot read"


def test_finished_for_unknown_task_is_reported_not_listed(project: Project, scenario: Scenario) -> None:
    """A `finished` event for a task never queued shows no phantom task; list names its line."""
    project.task("a", "scripted:none")
    assert project.cli("list").returncode == 0
    lineno = _append(project, {"type": "finished", "task": "ghost", "attempt": 1, "result": {"cost_usd": 9}})
    rows = _listed(project)
    scenario.outcome = f"listed {sorted(rows)}"
    assert sorted(rows) == ["a"]
    out = project.cli("list")
    assert f"queue.jsonl:{lineno}: finished event for unknown task 'ghost'" in out.stderr, out.stderr


def test_stale_events_after_finished_do_not_reopen_the_task(project: Project, scenario: Scenario) -> None:
    """A stale `claimed` after `finished` is refused: the task stays finished once, its branch stays put."""
    project.task("a", project.edit_script("a", "a.py", "x = 1\n"), paths=["a.py"])
    first = project.cli("run")
    assert first.returncode == 0, first.stdout + first.stderr
    head = git(project.root, "rev-parse", "agent/a")
    before = project.events()
    finished = next(e for e in before if e["type"] == "finished")
    stale = [
        {"type": "claimed", "task": "a", "attempt": 1, "worker": "local-1", "lease_until": 9e9},
        {"type": "finished", "task": "a", "attempt": 1, "result": {"summary": "second", "cost_usd": 5}},
        {"type": "failed", "task": "a", "attempt": 1, "reason": "late", "final": True},
    ]
    lineno = _append(project, *stale)
    row = _listed(project)["a"]
    scenario.outcome = f"status {row['status']}"
    assert row["status"] == "finished" and row["cost_usd"] == finished["result"].get("cost_usd", 0), row
    out = project.cli("list")
    for n, kind in enumerate(("claimed", "finished", "failed"), start=lineno):
        assert f"queue.jsonl:{n}: {kind} event for 'a', which is finished" in out.stderr, out.stderr
    again = project.cli("run")
    scenario.outcome = f"second run exit {again.returncode}"
    assert "Traceback" not in again.stderr and f"queue.jsonl:{lineno}: claimed event" in again.stderr
    assert again.returncode == 0, "an event nothing believes is reported, and the run goes on"
    assert project.events() == before + [{"ts": 1.0, **e} for e in stale], "the second run appended events"
    assert git(project.root, "rev-parse", "agent/a") == head


def test_definition_that_is_no_task_fails_with_the_reason(project: Project, scenario: Scenario) -> None:
    """A queued definition that fits the event schema but is no valid Task is listed, then failed on start."""
    project.task("a", "scripted:none")
    assert project.cli("list").returncode == 0
    definition = {"id": "z", "kind": "bogus", "model": "scripted:none", "max_attempts": 1}
    _append(project, {"type": "queued", "task": "z", "def": definition})
    assert _listed(project)["z"]["status"] == "queued"
    run = project.cli("run", "--only", "z")
    row = _listed(project)["z"]
    scenario.outcome = f"run exit {run.returncode}, z {row['status']}"
    assert "Traceback" not in run.stderr, run.stderr
    failed = [e for e in project.events() if e["type"] == "failed" and e["task"] == "z"]
    assert failed and all("cannot start: 1 validation error for Task" in e["reason"] for e in failed), failed
    assert row["status"] == "failed" and "kind" in failed[-1]["reason"]
