"""The overlap rule: declared paths, files an earlier attempt's landed commit changed, and read-only tasks."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.coordinator import readiness
from agent_runner.coordinator.planning import plan
from agent_runner.coordinator.readiness import Footprint, Footprints, Overlap, Writers, landed_files
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.protocols import Slot
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.state import TaskState


def _task(task_id: str, paths: list[str], *, kind: str = "change", repo: str | None = None) -> Task:
    return Task(id=task_id, kind=kind, instructions="x", paths=paths, repo=repo)


@pytest.mark.parametrize(
    ("mine", "theirs", "expected"),
    [
        ((["calc.py"], []), (["calc.py"], []), Overlap.DECLARED),
        ((["src"], []), (["src/a/b.py"], []), Overlap.DECLARED),
        ((["."], []), (["docs/x.md"], []), Overlap.DECLARED),
        ((["src"], []), (["src2/a.py"], []), Overlap.NONE),  # parts, not string prefixes
        (([], ["calc.py"]), (["calc.py"], []), Overlap.LEARNED),  # missing paths, learned files
        ((["src"], ["tests/test_a.py"]), (["tests"], []), Overlap.LEARNED),  # broad paths, learned files
        (([], ["a.py"]), ([], ["a.py"]), Overlap.LEARNED),
        (([], ["a.py"]), ([], ["b.py"]), Overlap.NONE),
        (([], []), (["."], []), Overlap.NONE),  # nothing declared or learned: nothing to overlap
    ],
)
def test_footprints_overlap_by_declared_paths_then_learned_files(
    mine: tuple[list[str], list[str]], theirs: tuple[list[str], list[str]], expected: Overlap
) -> None:
    """Declared paths overlap as before; the files an earlier attempt changed extend a task's footprint."""
    a = Footprint.of(_task("a", mine[0]), mine[1])
    b = Footprint.of(_task("b", theirs[0]), theirs[1])
    assert a.overlap(b) is expected and b.overlap(a) is expected
    assert Writers([b, Footprint.of(_task("c", ["elsewhere.py"]))]).overlap(a) is (
        expected is not Overlap.NONE
    )


def test_a_read_only_task_never_overlaps_and_repos_keep_apart() -> None:
    """A review task neither waits for a writer on its paths nor holds one up; other repos never overlap."""
    review = Footprint.of(_task("r", ["calc.py"], kind="review"), ["calc.py"])
    writer = Footprint.of(_task("w", ["calc.py"]), ["calc.py"])
    other_repo = Footprint.of(_task("o", ["calc.py"], repo="../other"))
    assert review.overlap(writer) is Overlap.NONE and writer.overlap(review) is Overlap.NONE
    assert review.overlap(review) is Overlap.NONE
    assert writer.overlap(other_repo) is Overlap.NONE
    assert not Writers([review, other_repo]).overlap(writer) and not Writers([writer]).overlap(review)


def _land(repo: Path, branch: str, files: dict[str, str]) -> None:
    """Commit `files` on `branch` off main in `repo`, as a landed result's single commit."""
    git(repo, "checkout", "-q", "-b", branch, "main")
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "landed")
    git(repo, "checkout", "-q", "main")


def test_landed_files_are_read_from_the_branch_in_the_landing_repo(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tip commit of agent/<id> names the files; no branch names none; too many read as the whole repo."""
    _land(project.root, "agent/t", {"calc.py": "x = 1\n", "pkg/mod.py": "y = 2\n"})
    assert landed_files(project.root, _task("t", [])) == ("calc.py", "pkg/mod.py")
    assert landed_files(project.root, _task("never", [])) == ()
    monkeypatch.setattr(readiness, "MAX_TOUCHED", 1)
    assert landed_files(project.root, _task("t", [])) == (".",)


def test_touched_files_are_read_once_per_ended_attempt(project: Project) -> None:
    """The cache answers a second look without git; another ended attempt reads the branch again."""
    _land(project.root, "agent/t", {"calc.py": "x = 1\n"})
    footprints, task = Footprints(project.root), _task("t", [])
    assert footprints.touched(task, n_ended=0) == ()  # never ran: no git call, nothing learned
    assert footprints.touched(task, n_ended=1) == ("calc.py",)
    git(project.root, "branch", "-D", "agent/t")
    assert footprints.touched(task, n_ended=1) == ("calc.py",)  # cached: git is not asked again
    assert footprints.touched(task, n_ended=2) == ()
    assert footprints.of(task, n_ended=1) is footprints.of(task, n_ended=1)


def _state(task: Task, *, attempt: int = 0, status: str = "queued", seq: int = 0) -> TaskState:
    state = TaskState(id=task.id, task_json=task.model_dump(mode="json"), attempt=attempt, seq=seq)
    state.status = state.status.__class__(status)
    return state


def test_dry_run_says_a_learned_overlap_waits_and_a_review_starts(project: Project) -> None:
    """plan(): a requeued task whose landed commit changed calc.py waits for the running writer of calc.py."""
    _land(project.root, "agent/broad", {"calc.py": "x = 1\n"})
    states = {
        "writer": _state(_task("writer", ["calc.py"]), attempt=1, status="running", seq=1),
        "broad": _state(_task("broad", []), attempt=1, seq=2),
        "review": _state(_task("review", ["calc.py"], kind="review"), seq=3),
    }
    slots = [Slot(name=f"local-{i}") for i in range(3)]
    config = load_config(project.root)
    rows = {row.task: row for row in plan(states, slots, config=config, root=project.root)}
    assert rows["broad"].note == "waits: files changed by an earlier attempt overlap with writer"
    assert rows["review"].note == "would start now"
    declared_only = {row.task: row for row in plan(states, slots, config=config)}
    assert declared_only["broad"].note == "would start now"


class RecordingExecutor(LocalExecutor):
    """The local executor, noting when each attempt starts and ends; `together` makes attempts wait for
    each other (a barrier): a test then proves they ran at the same time, or fails at the barrier."""

    def __init__(self, *args: Any, together: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, str]] = []
        self.barrier = threading.Barrier(together) if together else None

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        self.log.append(("start", request.task.id))
        if self.barrier is not None:
            self.barrier.wait(timeout=20)
        try:
            return super().run(request, slot)
        finally:
            self.log.append(("end", request.task.id))


def _run(project: Project, executor: RecordingExecutor, *, only: tuple[str, ...] = ()) -> list[str]:
    config = load_config(project.root)
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, only=only)
    summary = scheduler.run()
    executor.close()
    return sorted(summary.finished)


def _executor(project: Project, **kwargs: Any) -> RecordingExecutor:
    state = project.root / ".agent-runner"
    return RecordingExecutor(workdir=state, workers=2, cwd=project.root, fork=False, **kwargs)


def test_a_learned_overlap_serializes_two_tasks(project: Project) -> None:
    """A task with no paths whose landed commit changed calc.py, queued again, never runs beside a calc.py
    writer; with declared paths alone they would both start in the first dispatch round."""
    project.task("broad", project.edit_script("broad", "calc.py", "A = 1\n"))
    assert _run(project, _executor(project), only=("broad",)) == ["broad"]
    open_queue(project.root, load_config(project.root)).requeue("broad")
    project.task("narrow", project.edit_script("narrow", "calc.py", "B = 2\n"), paths=["calc.py"])
    executor = _executor(project)
    assert _run(project, executor) == ["broad", "narrow"]
    first, second = executor.log[0][1], executor.log[2][1]
    assert executor.log == [("start", first), ("end", first), ("start", second), ("end", second)]


def test_a_review_runs_beside_a_writer_on_the_same_paths(project: Project) -> None:
    """A review task and a change task on calc.py run at the same time (both pass a 2-party barrier)."""
    project.task("writer", project.edit_script("writer", "calc.py", "A = 1\n"), paths=["calc.py"])
    reviewer = project.script("reviewer", [{"text": "ok", "tool_calls": [_finish("looks fine")]}])
    project.task("look", reviewer, kind="review", paths=["calc.py"])
    executor = _executor(project, together=2)
    assert _run(project, executor) == ["look", "writer"]
    assert {event for event, _ in executor.log[:2]} == {"start"}


def _finish(summary: str) -> dict[str, Any]:
    return {"name": "finish", "arguments": {"summary": summary}}
