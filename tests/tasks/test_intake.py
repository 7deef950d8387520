"""Intake: task files enter the queue once; edits re-define waiting tasks only; invalid files are recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import TaskFileError
from agent_runner.core.task import Task, TaskKind, TaskStatus
from agent_runner.queue.intake import add_task, open_queue, slugify, sync_tasks
from agent_runner.queue.store import Queue


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo folder with an empty tasks/."""
    (tmp_path / "tasks").mkdir()
    return tmp_path


def write(repo: Path, name: str, text: str) -> Path:
    """Write tasks/<name> and return its path."""
    path = repo / "tasks" / name
    path.write_text(text)
    return path


def sync(repo: Path) -> tuple[Queue, object]:
    """Sync the repo's task folder into a fresh Queue object; return both."""
    config = RunnerConfig()
    queue = open_queue(repo, config)
    return queue, sync_tasks(repo, config, queue)


def test_new_files_are_queued_once(repo: Path) -> None:
    """A first sync queues every valid file with its relative path and digest; a second changes nothing."""
    write(repo, "a.md", "---\nkind: change\n---\nDo a.\n")
    write(repo, "b.yaml", "kind: review\ninstructions: Look.\n")
    queue, report = sync(repo)
    assert sorted(report.queued) == ["a", "b"] and report.n_changed == 2
    assert queue.states["a"].file == "tasks/a.md" and len(queue.states["a"].digest or "") == 64
    n_lines = len(queue.path.read_text().splitlines())
    queue, report = sync(repo)
    assert report.n_changed == 0 and report.n_unchanged == 2
    assert len(queue.path.read_text().splitlines()) == n_lines


def test_edit_redefines_waiting_task_but_never_reruns_a_finished_one(repo: Path) -> None:
    """Editing a queued task's file updates it; editing a finished task's file is only reported."""
    path = write(repo, "a.md", "---\nkind: change\ntitle: one\n---\n")
    queue, _ = sync(repo)
    path.write_text("---\nkind: change\ntitle: two\n---\n")
    queue, report = sync(repo)
    assert report.redefined == ["a"] and queue.states["a"].task.title == "two"
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    queue.finish("a", claim.attempt, {})
    path.write_text("---\nkind: change\ntitle: three\n---\n")
    queue, report = sync(repo)
    assert report.edited_after_start == ["a"] and report.n_changed == 0
    assert queue.states["a"].status == TaskStatus.FINISHED and queue.states["a"].task.title == "two"


def test_invalid_files_are_recorded_and_do_not_stop_others(repo: Path) -> None:
    """A broken file is recorded as invalid with its reason (once); valid files beside it are queued."""
    write(repo, "good.md", "---\nkind: change\n---\n")
    write(repo, "bad.md", "---\nkind: nope\n---\n")
    queue, report = sync(repo)
    assert report.queued == ["good"] and [bad.id for bad in report.invalid] == ["bad"]
    state = queue.states["bad"]
    assert state.status == TaskStatus.INVALID and state.file == "tasks/bad.md"
    assert state.reason.startswith("tasks/bad.md: field 'kind':")
    n_lines = len(queue.path.read_text().splitlines())
    sync(repo)
    assert len(queue.path.read_text().splitlines()) == n_lines


def test_broken_edit_of_a_waiting_task_blocks_it_until_fixed(repo: Path) -> None:
    """A queued task whose file breaks is not claimable; fixing the file queues it again."""
    path = write(repo, "a.md", "---\nkind: change\n---\n")
    sync(repo)
    path.write_text("---\nkind: [broken\n---\n")
    queue, _ = sync(repo)
    assert queue.states["a"].status == TaskStatus.INVALID and queue.claim("w", lease_s=60) is None
    path.write_text("---\nkind: change\n---\n")
    queue, _ = sync(repo)
    assert queue.states["a"].status == TaskStatus.QUEUED and queue.claim("w", lease_s=60) is not None


def test_duplicate_id_does_not_invalidate_the_queued_task(repo: Path) -> None:
    """A second file reusing a queued id is reported, while the first task stays queued."""
    write(repo, "a.md", "---\nid: same\nkind: change\n---\n")
    write(repo, "b.md", "---\nid: same\nkind: review\n---\n")
    queue, report = sync(repo)
    assert queue.states["same"].status == TaskStatus.QUEUED and queue.states["same"].task.kind == "change"
    assert "already used by tasks/a.md" in report.invalid[0].reason


def test_dependency_on_an_id_already_in_the_queue(repo: Path) -> None:
    """A task may depend on a task whose file is gone but which the queue knows."""
    old = write(repo, "old.md", "---\nkind: change\n---\n")
    sync(repo)
    old.unlink()
    write(repo, "new.md", "---\nkind: change\ndepends_on: [old]\n---\n")
    queue, report = sync(repo)
    assert report.queued == ["new"] and queue.states["new"].depends_on == ["old"]


def test_add_task_writes_validates_and_queues(repo: Path) -> None:
    """add_task writes tasks/<id>.md that loads back, queues it, and refuses a taken id or unknown dep."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "src").mkdir()
    config = RunnerConfig()
    queue = open_queue(repo, config)
    task = Task(id="clean-src", kind=TaskKind.FIX_LINT, title="Clean src", paths=["src/"])
    path = add_task(repo, config, queue, task)
    assert path == repo / "tasks" / "clean-src.md" and queue.states["clean-src"].file == "tasks/clean-src.md"
    with pytest.raises(TaskFileError, match="id 'clean-src' is taken"):
        add_task(repo, config, queue, task)
    with pytest.raises(TaskFileError, match="field 'depends_on': unknown task"):
        add_task(repo, config, queue, Task(id="next", kind=TaskKind.CHANGE, depends_on=["ghost"]))
    assert not (repo / "tasks" / "next.md").exists()
    _, report = sync(repo)
    assert report.n_changed == 0  # the file add_task wrote is what the queue already holds


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Clean lint in src/", "clean-lint-in-src"),
        ("Replace os.path with pathlib in utils.py", "replace-os-path-with-pathlib-in-utils-py"),
        ("  Ünïcode & symbols!! ", "n-code-symbols"),
        ("x" * 70, "x" * 50),
        ("!!!", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    """Titles become ids of [a-z0-9-], at most 50 characters, cut at a word boundary."""
    assert slugify(text) == slug
