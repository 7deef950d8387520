"""The task commands through typer's runner and through the installed `run-agents` entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.errors import ConfigError, QueueError, TaskFileError
from agent_runner.core.task import TaskStatus, load_task_file
from agent_runner.queue.scaffold import builtin_prompts
from agent_runner.queue.store import Queue

# .ci/run points this at a wheel installed as a user installs it (no extras, newest allowed dependencies).
USER_BIN = os.environ.get("AGENT_RUNNER_USER_BIN")
RUN_AGENTS = Path(USER_BIN) if USER_BIN else Path(sys.executable).with_name("run-agents")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with no commit yet, holding src/parser.py (what the example tasks target)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "parser.py").write_text("def parse(text):\n    return text.split()\n")
    return tmp_path


def cli(repo: Path, *args: str) -> object:
    """Invoke the app in-process with --root `repo`; return click's result."""
    return CliRunner().invoke(get_app(), ["--root", str(repo), *args])


def ok(repo: Path, *args: str) -> str:
    """Invoke a command that must succeed; return its stdout."""
    result = cli(repo, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def listed(repo: Path) -> dict[str, dict[str, object]]:
    """Return `list --json` keyed by id."""
    return {row["id"]: row for row in json.loads(ok(repo, "list", "--json"))}


def test_init_creates_and_is_idempotent(repo: Path) -> None:
    """init writes tasks/, prompts/ and the pyproject table; a second run keeps everything."""
    out = ok(repo, "init")
    assert "created  tasks/_example.md" in out and "created  pyproject.toml [tool.agent-runner]" in out
    example = repo / "tasks" / "clean-src.md"  # the template becomes a task once copied to a real name
    example.write_text((repo / "tasks" / "_example.md").read_text())
    assert load_task_file(example).kind == "fix-lint"
    example.unlink()
    assert {p.name for p in (repo / "prompts").iterdir()} == {p.name for p in builtin_prompts()}
    table = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["agent-runner"]
    assert table == {"tasks_dir": "tasks", "queue": "tasks/queue.jsonl"}
    (repo / "tasks" / "_example.md").write_text("edited")
    again = ok(repo, "init")
    assert "created" not in again and (repo / "tasks" / "_example.md").read_text() == "edited"
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert ignored.count("/tasks/queue.jsonl.lock") == 1  # written once, not again
    assert "/.agent-runner/" in ignored and "/tasks/queue.jsonl.coordinator" in ignored
    assert listed(repo) == {}  # the example is a template, not a queued task


def test_init_keeps_an_existing_pyproject(repo: Path) -> None:
    """init appends the table to a pyproject without one and leaves an existing table alone."""
    (repo / "pyproject.toml").write_text('[project]\nname = "demo"')
    ok(repo, "init")
    data = tomllib.loads((repo / "pyproject.toml").read_text())
    assert data["project"]["name"] == "demo" and data["tool"]["agent-runner"]["tasks_dir"] == "tasks"
    (repo / "pyproject.toml").write_text("[tool.agent-runner]\nworkers = 4\n")
    ok(repo, "init")
    assert (repo / "pyproject.toml").read_text() == "[tool.agent-runner]\nworkers = 4\n"


def test_init_outside_a_git_repo_fails(tmp_path: Path) -> None:
    """init refuses a folder that is not a git repository."""
    result = cli(tmp_path, "init")
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError)
    assert "git init" in str(result.exception)


def test_add_list_show_cancel_requeue(repo: Path) -> None:
    """The issue's walkthrough: three adds, list, show, cancel and requeue, all reflected in the queue."""
    assert "Queued clean-lint-in-src" in ok(
        repo, "add", "fix-lint", "--path", "src/", "--title", "Clean lint in src"
    )
    ok(repo, "add", "write-tests", "--path", "src/parser.py", "-m", "Cover the error branches")
    ok(repo, "add", "change", "-m", "Replace os.path with pathlib in utils.py", "--id", "pathlib-utils",
       "--priority", "3", "--model", "openai:gpt-test", "--depends-on", "clean-lint-in-src",
       "--machine", "laptop-a")  # fmt: skip
    task = load_task_file(repo / "tasks" / "pathlib-utils.md")
    assert (task.priority, task.model, task.depends_on, task.machine) == (
        3,
        "openai:gpt-test",
        ["clean-lint-in-src"],
        "laptop-a",
    )
    rows = listed(repo)
    assert set(rows) == {"clean-lint-in-src", "cover-the-error-branches", "pathlib-utils"}
    assert rows["pathlib-utils"]["status"] == "queued" and rows["pathlib-utils"]["machine"] == "laptop-a"
    assert rows["cover-the-error-branches"]["kind"] == "write-tests"
    table = ok(repo, "list")
    assert "pathlib-utils" in table and "attempts" in table
    shown = ok(repo, "show", "pathlib-utils")
    assert "Replace os.path with pathlib" in shown and "queued" in shown
    data = json.loads(ok(repo, "show", "pathlib-utils", "--json"))
    assert data["task"]["priority"] == 3 and [e["type"] for e in data["events"]] == ["queued"]
    ok(repo, "cancel", "pathlib-utils")
    assert listed(repo)["pathlib-utils"]["status"] == "cancelled"
    (repo / "tasks" / "pathlib-utils.md").write_text("---\nkind: change\npriority: 1\n---\nNew words.\n")
    ok(repo, "requeue", "pathlib-utils")
    state = Queue(repo / "tasks" / "queue.jsonl").refresh()["pathlib-utils"]
    assert (
        state.status == TaskStatus.QUEUED and state.priority == 1 and state.task.instructions == "New words."
    )
    assert len(ok(repo, "list", "--json", "--status", "queued")) > 2


@pytest.mark.parametrize(
    ("args", "error", "needle"),
    [
        (["add", "change", "-m", "x", "--id", "taken"], TaskFileError, "id 'taken' is taken"),
        (["add", "change"], TaskFileError, "give --id, --title or -m"),
        (["add", "change", "--id", "Bad Id"], TaskFileError, "field 'id'"),
        (["add", "change", "--id", "x", "--depends-on", "ghost"], TaskFileError, "unknown task(s) ghost"),
        (["show", "ghost"], QueueError, "no task 'ghost'"),
        (["cancel", "ghost"], QueueError, "no task 'ghost'"),
        (["requeue", "ghost"], QueueError, "no task 'ghost'"),
    ],
)
def test_errors_are_runner_errors(repo: Path, args: list[str], error: type[Exception], needle: str) -> None:
    """Bad requests raise RunnerError subclasses that say what to do (the CLI prints them, exit 1)."""
    ok(repo, "add", "change", "-m", "x", "--id", "taken")
    result = cli(repo, *args)
    assert result.exit_code == 1 and isinstance(result.exception, error)
    assert needle in str(result.exception)


def test_list_shows_invalid_files_and_corrupt_lines(repo: Path) -> None:
    """An invalid file is listed as invalid with its reason; a corrupt queue line is warned by number."""
    ok(repo, "add", "change", "-m", "fine", "--id", "fine")
    (repo / "tasks" / "broken.md").write_text("---\nkind: change\npriority: high\n---\n")
    with open(repo / "tasks" / "queue.jsonl", "a") as fh:
        fh.write("garbage\n")
    result = cli(repo, "list")
    assert result.exit_code == 0
    assert "broken (invalid): tasks/broken.md: field 'priority'" in result.stdout
    assert "queue.jsonl:2: not a JSON event" in result.stderr
    rows = listed(repo)
    assert rows["broken"]["status"] == "invalid" and rows["fine"]["status"] == "queued"
    assert [row["id"] for row in json.loads(ok(repo, "list", "--json", "--status", "invalid"))] == ["broken"]


def test_show_trajectory_renders_the_latest_attempt(repo: Path) -> None:
    """show --trajectory prints the newest attempt's trajectory through render_trajectory."""
    from agent_runner.worker.trajectory import TrajectoryWriter

    ok(repo, "add", "change", "-m", "x", "--id", "traj")
    queue = Queue(repo / "tasks" / "queue.jsonl")
    claim = queue.claim("w", lease_s=60)
    assert claim is not None
    result = cli(repo, "show", "traj", "--trajectory")
    assert result.exit_code == 1 and "no trajectory for traj" in str(result.exception)
    writer = TrajectoryWriter(repo / ".agent-runner" / "runs" / "traj" / "1" / "trajectory.jsonl")
    writer.write("user", text="Please swap os.path for pathlib")
    writer.close()
    assert "Please swap os.path for pathlib" in ok(repo, "show", "traj", "--trajectory")


def test_show_names_a_finished_tasks_branch_and_head(repo: Path) -> None:
    """A finished task's `show` says where its work is (branch and head commit); a failed one's does not."""
    for task_id in ("done", "lost"):
        ok(repo, "add", "change", "-m", "x", "--id", task_id)
    queue = Queue(repo / "tasks" / "queue.jsonl")
    result = {"branch": "agent/done", "head_commit": "a" * 40, "outcome": "accepted"}
    for task_id in ("done", "lost"):
        claim = queue.claim("w", lease_s=60, accept=lambda s, task_id=task_id: s.id == task_id)
        assert claim is not None
        if task_id == "done":
            queue.finish(task_id, claim.attempt, result)
        else:
            queue.fail(task_id, claim.attempt, "gates failed", result={**result, "branch": "agent/lost"})
    shown = ok(repo, "show", "done")
    assert "agent/done" in shown and "a" * 40 in shown
    assert "agent/lost" not in ok(repo, "show", "lost")


def test_compact_keeps_the_listing(repo: Path) -> None:
    """compact rewrites the queue file without changing what list reports."""
    for n in range(3):
        ok(repo, "add", "change", "-m", f"task {n}", "--id", f"t{n}")
    ok(repo, "cancel", "t1")
    before = listed(repo)
    assert "4 events -> 3 lines" in ok(repo, "compact")
    assert listed(repo) == before


def run_agents(repo: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the installed console script in `repo`; check its exit code."""
    proc = subprocess.run([str(RUN_AGENTS), *args], cwd=repo, capture_output=True, text=True, timeout=60)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


def test_installed_entry_point(repo: Path) -> None:
    """The real `run-agents` script: init, add, list --json, show, cancel, requeue, errors, usage errors."""
    run_agents(repo, "init")
    run_agents(repo, "add", "fix-lint", "--path", "src/", "--title", "Clean lint in src")
    rows = json.loads(run_agents(repo, "list", "--json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [("clean-lint-in-src", "queued")]
    assert "Clean lint in src" in run_agents(repo, "show", "clean-lint-in-src").stdout
    run_agents(repo, "cancel", "clean-lint-in-src")
    run_agents(repo, "requeue", "clean-lint-in-src")
    assert json.loads(run_agents(repo, "list", "--json").stdout)[0]["status"] == "queued"
    failed = run_agents(repo, "show", "nope", code=1)
    assert failed.stderr.startswith("Error: no task 'nope'") and "Traceback" not in failed.stderr
    assert "Traceback" in run_agents(repo, "--debug", "show", "nope", code=1).stderr
    assert run_agents(repo, "add", "no-such-kind", code=2).stderr


@pytest.mark.parametrize(
    "args",
    [("list", "--bogus"), ("add",), ("run", "--workers", "abc"), ("no-such-command",)],
    ids=["unknown-option", "missing-argument", "bad-value", "unknown-command"],
)
def test_usage_errors_exit_2_with_usage_text(repo: Path, args: tuple[str, ...]) -> None:
    """A usage error prints usage text and exits 2, never a traceback (the installed script)."""
    failed = run_agents(repo, *args, code=2)
    assert "Usage:" in failed.stderr and "Traceback" not in failed.stderr


def test_ci_checks_the_user_install() -> None:
    """CI runs the entry-point tests against a wheel installed without extras, as a user gets it."""
    if os.environ.get("CI") != "true":
        pytest.skip("only CI builds the user install (.ci/run)")
    assert USER_BIN and Path(USER_BIN).is_file() and not Path(USER_BIN).is_relative_to(Path(sys.prefix))
