"""The sweep at a run's start removes checkouts of attempts that no longer run, and nothing else."""

from __future__ import annotations

from pathlib import Path

from run_helpers import Project

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.coordinator.sweep import sweep_checkouts
from agent_runner.core.task import Task
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue, sync_tasks
from agent_runner.queue.store import Queue


def checkout(state: Path, name: str) -> Path:
    """Make checkouts/<name> with a file, and the runner's git dir and index beside it, as attempts do."""
    path = state / "checkouts" / name
    (path / "src").mkdir(parents=True)
    (path / "src" / "calc.py").write_text("x = 1\n")
    path.with_name(name + ".git").mkdir()
    path.with_name(name + ".index").write_text("index")
    return path


def attempt(queue: Queue, task_id: str) -> int:
    claim = queue.claim("local-1", lease_s=60, accept=lambda s: s.id == task_id)
    assert claim is not None
    return claim.attempt


def test_sweep_removes_released_interrupted_and_cancelled_attempts_checkouts(tmp_path: Path) -> None:
    """Released, orphaned, cancelled, re-granted attempts lose their checkouts; live, kept, unknown stay."""
    state = tmp_path / ".agent-runner"
    now = [1000.0]
    queue = Queue(tmp_path / "queue.jsonl", clock=lambda: now[0])
    for task_id in ("released", "orphan", "cancelled", "failed", "live", "regranted"):
        queue.add(Task(id=task_id, kind="change", instructions="x"))
    queue.release("released", attempt(queue, "released"), "machine lost")
    kept = checkout(state, "failed-1")
    queue.fail("failed", attempt(queue, "failed"), "gates failed", result={"checkout_path": str(kept)})
    queue.fail("failed", attempt(queue, "failed"), "gates failed", result={"checkout_path": None})
    attempt(queue, "cancelled")
    queue.cancel("cancelled")
    attempt(queue, "orphan")
    queue.release_orphans()
    attempt(queue, "regranted")
    now[0] += 120  # attempt 1's lease runs out: the next claim expires it and grants attempt 2
    assert attempt(queue, "regranted") == 2
    attempt(queue, "live")
    gone = [checkout(state, n) for n in ("released-1", "orphan-1", "cancelled-1", "failed-2", "regranted-1")]
    stay = [kept, checkout(state, "live-1"), checkout(state, "regranted-2"), checkout(state, "stranger-1"),
            checkout(state, "live-7")]  # fmt: skip
    (state / "checkouts" / "notes.txt").write_text("mine")
    assert sweep_checkouts(state, queue) == sorted(gone)
    for path in gone:
        assert not path.exists() and not path.with_name(path.name + ".git").exists()
        assert not path.with_name(path.name + ".index").exists()
    for path in stay:
        assert (path / "src" / "calc.py").is_file() and path.with_name(path.name + ".git").is_dir()
    assert (state / "checkouts" / "notes.txt").read_text() == "mine"
    assert sweep_checkouts(state, queue) == []
    assert sweep_checkouts(tmp_path / "nowhere", queue) == []


def test_the_next_run_removes_the_checkout_a_stopped_coordinator_left(project: Project) -> None:
    """A coordinator stopped mid-attempt left attempt 1 running and its checkout on disk: the next run
    releases the attempt, removes that checkout (and the runner's files beside it) and runs attempt 2."""
    project.task("greet", project.edit_script("greet", "greet.py", "print('hi')\n"))
    config = load_config(project.root)
    queue = open_queue(project.root, config)
    sync_tasks(project.root, config, queue)
    attempt(queue, "greet")  # the stopped coordinator's claim
    state = config.path(project.root, "state_dir")
    left = checkout(state, "greet-1")
    executor = LocalExecutor(workdir=state, fork=False, cwd=project.root)
    try:
        summary = Scheduler(queue, executor, config=config, root=project.root).run()
    finally:
        executor.close()
    assert summary.finished == ["greet"]
    assert not left.exists() and not left.with_name("greet-1.git").exists()
    assert queue.refresh()["greet"].attempt == 2
