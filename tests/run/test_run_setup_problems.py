"""Setup problems (no git repo, no model key, a missing target) spend nothing and hide nothing."""

from __future__ import annotations

import json
import os
import queue as stdqueue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Project, git
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.errors import ConfigError, TaskFileError
from agent_runner.core.task import TaskStatus
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue

LINT_FIXABLE = "import os\n\n\ndef one():\n    return 1\n"  # F401: `ruff check --fix` removes it
LINT_FOR_MODEL = "def two():\n    return undefined_name\n"  # F821: only a model can fix it
KEY_VAR = "ANTHROPIC_API_KEY"  # the default model's key; the autouse fixture unsets it


def invoke(root: Path, *args: str) -> Any:
    """Run `run-agents --root <root> args...` in this process (typer's runner)."""
    return CliRunner().invoke(get_app(), ["--root", str(root), *args])


def scheduled(project: Project, **overrides: Any) -> tuple[RunSummary, list[RunEvent]]:
    """Run the queue once with local workers; return the summary and the events."""
    config = load_config(project.root, overrides=overrides)
    state = config.path(project.root, "state_dir")
    executor = LocalExecutor(workdir=state, workers=config.workers, cwd=project.root)
    events: list[RunEvent] = []
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    try:
        return scheduler.run(), events
    finally:
        executor.close()


def commit_lint(project: Project) -> None:
    """Commit src/fixable.py (ruff --fix clears it) and src/judgment.py (it needs a model)."""
    src = project.root / "src"
    src.mkdir()
    (src / "fixable.py").write_text(LINT_FIXABLE)
    (src / "judgment.py").write_text(LINT_FOR_MODEL)
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lint")


def fix_lint_task(project: Project, task_id: str, path: str, **fields: Any) -> None:
    """Write a fix-lint task on `path` that uses the default model (no model: field)."""
    front = "".join(f"{key}: {value}\n" for key, value in fields.items())
    (project.tasks / f"{task_id}.md").write_text(f"---\nkind: fix-lint\npaths: [{path}]\n{front}---\nx\n")


def change_task(project: Project, task_id: str, *, priority: int = 0) -> None:
    """Write a change task on the default model (whose key is unset), ahead of others by `priority`."""
    (project.tasks / f"{task_id}.md").write_text(f"---\nkind: change\npriority: {priority}\n---\nChange.\n")


# -- outside a git repository ---------------------------------------------------------------------------
def test_add_outside_a_git_repo_refuses_and_creates_nothing(tmp_path: Path) -> None:
    """`add` where there is no git repository exits 1 as `init` does, and writes no tasks/ folder."""
    result = invoke(tmp_path, "add", "fix-lint", "--path", "src/", "--title", "Clean src")
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError)
    assert "not a git repository" in str(result.exception) and "git init" in str(result.exception)
    assert list(tmp_path.iterdir()) == []


def test_run_outside_a_git_repo_refuses_up_front_and_spends_nothing(tmp_path: Path) -> None:
    """`run` and `run --dry-run` outside a git repository refuse before claiming: no queue, no attempt."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "x.md").write_text("---\nkind: fix-lint\n---\nClean.\n")
    for args in (("run",), ("run", "--dry-run"), ("watch",)):
        result = invoke(tmp_path, *args)
        assert result.exit_code == 1 and isinstance(result.exception, ConfigError), args
        assert "not a git repository" in str(result.exception)
    assert sorted(p.name for p in (tmp_path / "tasks").iterdir()) == ["x.md"]
    assert not (tmp_path / ".agent-runner").exists()


def test_a_repo_without_commits_holds_its_tasks_instead_of_failing_them(tmp_path: Path) -> None:
    """A repo with no commit yet holds its tasks with the reason; no attempt is claimed or spent."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "pyproject.toml").write_text('[tool.agent-runner]\nsandbox = "none"\ntest = "true"\n')
    project = Project(root)
    project.task("first", project.edit_script("first", "a.py", "a = 1\n"))
    summary, events = scheduled(project)
    assert [e.kind for e in events] == ["held"] and "no commits yet" in events[0].message
    assert "no commits yet" in summary.held["first"] and summary.exit_code == 1
    state = open_queue(root, load_config(root)).refresh()["first"]
    assert (state.status, state.attempt, state.spent) == (TaskStatus.QUEUED, 0, 0)


# -- a missing model key --------------------------------------------------------------------------------
def test_missing_key_holds_tasks_before_any_claim_or_checkout(project: Project) -> None:
    """Tasks whose model has no key are held, never claimed: no attempt, no checkout, the variable named."""
    change_task(project, "needs-model")
    summary, events = scheduled(project)
    assert [e.kind for e in events] == ["model_blocked", "held"]
    assert KEY_VAR in events[1].message and events[1].task == "needs-model"
    assert KEY_VAR in summary.held["needs-model"] and summary.exit_code == 1
    state = open_queue(project.root, load_config(project.root)).refresh()["needs-model"]
    assert (state.status, state.attempt) == (TaskStatus.QUEUED, 0)
    assert not (project.root / ".agent-runner" / "runs").exists()


def test_dry_run_names_the_held_tasks_and_the_variable_to_set(project: Project) -> None:
    """`run --dry-run --json` says which tasks are held and which variable to set, not "would start now"."""
    commit_lint(project)
    change_task(project, "needs-model")
    fix_lint_task(project, "lint-fixable", "src/fixable.py")
    result = invoke(project.root, "run", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    notes = {row["task"]: row["note"] for row in json.loads(result.stdout)}
    assert notes["needs-model"].startswith("held: ") and KEY_VAR in notes["needs-model"]
    assert "ruff --fix only" in notes["lint-fixable"] and KEY_VAR in notes["lint-fixable"]
    assert not (project.tasks / "queue.jsonl").exists()


def test_a_key_set_but_not_forwarded_holds_the_task(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key the workers would never get (left out of forward_env) holds its tasks, saying so."""
    monkeypatch.setenv(KEY_VAR, "sk-ant-not-forwarded")
    change_task(project, "needs-model")
    summary, _ = scheduled(project, forward_env=["OPENAI_API_KEY"])
    assert "forward_env" in summary.held["needs-model"] and KEY_VAR in summary.held["needs-model"]


# -- model-free work goes on ----------------------------------------------------------------------------
def test_model_free_fix_lint_runs_while_model_tasks_ahead_are_held(project: Project) -> None:
    """Keyless: the fix-lint task ruff clears finishes although a model task has priority; the one ruff
    cannot finish is tried once and held; the model task is held unclaimed. Nothing fails or is spent."""
    commit_lint(project)
    change_task(project, "needs-model", priority=5)
    fix_lint_task(project, "lint-fixable", "src/fixable.py")
    fix_lint_task(project, "lint-judgment", "src/judgment.py")
    summary, events = scheduled(project, workers=1)
    assert summary.finished == ["lint-fixable"] and not summary.failed
    assert set(summary.held) == {"needs-model", "lint-judgment"}
    assert "ruff --fix left violations" in summary.held["lint-judgment"]
    assert all(KEY_VAR in reason for reason in summary.held.values())
    held = {e.task: e.attempt for e in events if e.kind == "held"}
    assert held == {"needs-model": None, "lint-judgment": 1}
    states = open_queue(project.root, load_config(project.root)).refresh()
    assert states["needs-model"].attempt == 0 and states["lint-judgment"].spent == 0
    assert git(project.root, "show", "agent/lint-fixable:src/fixable.py").startswith("def one")


def test_watch_runs_a_dropped_model_free_task_while_a_model_task_is_held(project: Project) -> None:
    """`watch --json`: the keyless model task is reported held at once; a fix-lint file dropped later
    runs and finishes; Ctrl-C ends the run with the hold in its summary."""
    commit_lint(project)
    change_task(project, "needs-model", priority=5)
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "watch", "--json"]
    env = {k: v for k, v in os.environ.items() if k != KEY_VAR}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: stdqueue.Queue[dict[str, Any]] = stdqueue.Queue()
    reader = threading.Thread(target=_read_events, args=(proc, lines), daemon=True)
    reader.start()
    try:
        held = _next_event(lines, "held")
        assert held["task"] == "needs-model" and KEY_VAR in held["message"]
        fix_lint_task(project, "lint-dropped", "src/fixable.py")
        finished = _next_event(lines, "finished")
        assert finished["task"] == "lint-dropped"
        proc.send_signal(signal.SIGINT)
        summary = _next_event(lines, "summary")
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=30)
    assert summary["finished"] == ["lint-dropped"] and KEY_VAR in summary["held"]["needs-model"]


def _read_events(proc: subprocess.Popen[str], lines: stdqueue.Queue[dict[str, Any]]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            lines.put(json.loads(line))


def _next_event(lines: stdqueue.Queue[dict[str, Any]], kind: str, timeout: float = 90) -> dict[str, Any]:
    """Return the next JSON event of `kind` (the others are skipped); fail after `timeout` seconds."""
    while True:
        try:
            event = lines.get(timeout=timeout)
        except stdqueue.Empty:
            raise AssertionError(f"no {kind!r} event within {timeout} s") from None
        if event.get("event") == kind:
            return event


# -- targets that do not exist --------------------------------------------------------------------------
def test_add_refuses_a_target_path_the_repo_does_not_have(project: Project) -> None:
    """`add fix-lint --path src/nope.py` exits 1 naming 'paths' and the path, and writes no task file."""
    commit_lint(project)
    result = invoke(project.root, "add", "fix-lint", "--path", "src/nope.py", "--id", "nope")
    assert result.exit_code == 1 and isinstance(result.exception, TaskFileError)
    assert result.exception.field == "paths" and "'src/nope.py' not found" in str(result.exception)
    assert not (project.tasks / "nope.md").exists()
    ok = invoke(project.root, "add", "fix-lint", "--path", "src/", "--path", "./src/fixable.py", "--id", "ok")
    assert ok.exit_code == 0, ok.output


def test_add_refuses_a_target_that_is_on_disk_but_not_committed(project: Project) -> None:
    """A target only in the working tree is not in the commit the task branches off: refused, said so."""
    (project.root / "new.py").write_text("x = 1\n")
    result = invoke(project.root, "add", "write-tests", "--path", "new.py", "--id", "cover-new")
    assert result.exit_code == 1 and "'new.py' not found" in str(result.exception)
    assert "commit new files first" in str(result.exception)


def test_task_file_naming_a_missing_path_is_flagged_and_never_runs(project: Project) -> None:
    """A task file with a missing target is an invalid task naming its file and 'paths'; nothing runs."""
    commit_lint(project)
    fix_lint_task(project, "typo", "src/fixabel.py")
    summary, events = scheduled(project)
    reason = summary.invalid["typo"]
    assert reason.startswith("tasks/typo.md: field 'paths': 'src/fixabel.py' not found")
    assert [e.kind for e in events] == ["invalid"] and summary.n_attempts == 0
    listed = json.loads(invoke(project.root, "list", "--json").stdout)
    assert [(row["id"], row["status"]) for row in listed] == [("typo", "invalid")]
