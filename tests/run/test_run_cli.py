"""The commands as a user runs them: exec, run (--dry-run, kill -9 and re-run), watch, clean."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.queue.store import Queue


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_exec_prints_one_json_result_with_a_bundle_that_fetches(project: Project) -> None:
    """`exec -` reads a WorkRequest on stdin and prints only the result JSON, whose inline bundle fetches."""
    project.task("ex", project.edit_script("ex", "ex.py", "print('ex')\n"))
    config = load_config(project.root, overrides={"setup": ["echo noise-on-stdout"]})
    request = WorkRequest(
        task=load_task_file(project.tasks / "ex.md"), repo=str(project.root),
        secrets={"ANTHROPIC_API_KEY": "sk-x"}, config=config.model_dump(mode="json", by_alias=True),
    )  # fmt: skip
    out = project.cli("exec", "-", "--inline-bundle", input=request.model_dump_json())
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1
    result = TaskResult.model_validate_json(lines[0])
    bundle = project.root.parent / "ex.bundle"
    bundle.write_bytes(base64.b64decode(result.bundle_b64 or ""))
    git(project.root, "fetch", "-q", str(bundle), "agent/ex:agent/ex")
    assert git(project.root, "rev-parse", "agent/ex") == result.head_commit


def test_dry_run_shows_plan_and_changes_nothing(project: Project) -> None:
    """--dry-run names worker, model and limits, shows overlap waits and invalid files, and writes nothing."""
    model = project.edit_script("d", "calc.py", "x = 1\n")
    project.task("first", model, paths=["calc.py"], priority=1)
    project.task("second", model, paths=["calc.py"], limits={"steps": 7})
    (project.tasks / "bad.md").write_text("---\nkind: change\nlimits: {steps: -3}\n---\nx\n")
    out = project.invoke("run", "--dry-run", "--json")
    assert out.exit_code == 0, out.output
    rows = {row["task"]: row for row in json.loads(out.stdout)}
    assert rows["first"]["worker"] == "local-1" and rows["first"]["model"] == model
    assert rows["second"]["worker"] is None and "overlap with first" in rows["second"]["note"]
    assert rows["second"]["limits"]["steps"] == 7
    assert rows["bad"]["status"] == "invalid" and rows["bad"]["worker"] is None
    assert "bad.md: field 'limits.steps'" in rows["bad"]["note"]

    def only(*args: str) -> set[str]:
        return {row["task"] for row in json.loads(project.invoke("run", "--dry-run", "--json", *args).stdout)}

    assert only("--only", "first") == {"first"}
    assert only("--only", "first,bad") == only("--only", "first", "--only", "bad") == {"first", "bad"}
    assert not (project.tasks / "queue.jsonl").exists()


def test_a_model_flag_that_names_no_model_is_refused_before_anything_runs(project: Project) -> None:
    """`run --model` with an unknown provider (or no name) is a usage error; nothing is queued or run."""
    project.task("one", project.edit_script("one", "one.py", "x = 1\n"))
    for spec, message in (
        ("antropic:claude-x", "unknown model provider 'antropic'"),
        ("openai:", "openai:<name>"),
    ):
        out = project.invoke("run", "--model", spec)
        assert out.exit_code == 2 and message in out.output, out.output
    assert project.invoke("exec", "tasks/one.md", "--model", "antropic:x").exit_code == 2
    assert not (project.tasks / "queue.jsonl").exists()


def test_run_where_there_is_no_task_folder_says_so_and_creates_nothing(tmp_path: Path) -> None:
    """`run`, `run --dry-run` and `watch` where there is no tasks/ (a wrong folder, likely) stop at once."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for args in (["run"], ["run", "--dry-run"], ["watch"]):
        argv = [sys.executable, "-m", "agent_runner.cli", *args]
        out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and f"no task folder at {tmp_path / 'tasks'}" in out.stderr, out.stderr
    assert [p.name for p in tmp_path.iterdir()] == [".git"]


def test_a_second_run_on_a_busy_queue_is_refused_before_it_shows_anything(project: Project) -> None:
    """While one `run` holds the queue, another says who holds it and exits 1, with no table or claim."""
    project.task("slow", project.edit_script("slow", "slow.py", "x = 1\n", delay_s=2.0))
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "run", "--json"]
    first = subprocess.Popen(argv, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    queue_file = project.tasks / "queue.jsonl"
    _wait_for(lambda: queue_file.exists() and '"claimed"' in queue_file.read_text())
    second = project.cli("run")
    assert second.returncode == 1 and second.stdout == "", second.stdout
    assert f"is being run by run-agents pid {first.pid}" in second.stderr, second.stderr
    assert first.wait(timeout=60) == 0
    assert [e["type"] for e in project.queue_events()].count("claimed") == 1


def test_coordinator_killed_mid_run_then_rerun_finishes_each_task_once(project: Project) -> None:
    """kill -9 of `run`, then `run` again: it frees the dead run's attempts at once, re-runs, each once."""
    for name in ("k1", "k2"):
        project.task(
            name, project.edit_script(name, f"{name}.py", "x = 1\n", delay_s=0.8), paths=[f"{name}.py"]
        )
    env = {**os.environ, "AGENT_RUNNER_LEASE_SECONDS": "1.5"}
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "run", "--json"]
    proc = subprocess.Popen(argv, cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    queue_file = project.tasks / "queue.jsonl"
    _wait_for(lambda: queue_file.exists() and queue_file.read_text().count('"claimed"') >= 2)
    proc.kill()
    proc.wait()
    finished_before = {e["task"] for e in project.queue_events() if e["type"] == "finished"}
    out = project.cli("run", "--json", env=env)
    assert out.returncode == 0, out.stderr
    queue = Queue(queue_file)
    queue.check()
    events = list(queue.events())
    for name in ("k1", "k2"):
        assert [e["type"] for e in events if e.get("task") == name].count("finished") == 1
        assert git(project.root, "show", f"agent/{name}:{name}.py") == "x = 1"
    for name in finished_before:
        assert [e["type"] for e in events if e.get("task") == name].count("claimed") == 1
    orphaned = [e for e in events if e["type"] == "released" and "coordinator" in e.get("reason", "")]
    assert orphaned and not any(e["infra"] for e in orphaned)  # the killed run's attempts ran again, unspent


def test_watch_queues_and_runs_a_dropped_task_file(project: Project) -> None:
    """`watch` picks up a task file written while it runs, reports an invalid one, and stops on Ctrl-C."""
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project.root), "watch", "--json"]
    proc = subprocess.Popen(argv, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict[str, object]] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stdout or []))
    reader.start()
    try:
        time.sleep(1.5)  # let it start watching
        (project.tasks / "broken.md").write_text("---\nkind: change\nsteps: 3\n---\nx\n")
        project.task("dropped", project.edit_script("dropped", "dropped.py", "y = 2\n"))
        _wait_for(lambda: any(e.get("event") == "finished" for e in lines))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        reader.join(timeout=5)
    assert any(e.get("event") == "invalid" and e.get("task") == "broken" for e in lines)
    assert git(project.root, "show", "agent/dropped:dropped.py") == "y = 2"


def test_run_exit_code_and_clean(project: Project) -> None:
    """A failed task makes `run` exit 1 and keeps its checkout; `clean` removes it."""
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "nothing"}}]}
    project.task("nope", project.script("nope", [finish]), max_attempts=1, reflection_rounds=0)
    out = project.invoke("run")
    assert out.exit_code == 1
    assert "nope" in out.stdout and "failed" in out.stdout
    checkouts = project.root / ".agent-runner" / "checkouts"
    assert sorted(p.name for p in checkouts.iterdir()) == ["nope-1", "nope-1.git"]  # the runner's git dir
    ready = project.root / ".agent-runner" / "ready"  # made ahead in the background (perhaps half-made)
    assert project.invoke("clean").exit_code == 0
    assert not checkouts.exists() and not ready.exists()
    assert git(project.root, "status", "--porcelain", "--ignored=no", ".agent-runner") == ""


def test_run_with_nothing_to_do_exits_zero_and_unknown_only_fails(project: Project) -> None:
    """An empty tasks/ folder is a successful no-op; `--only` with an unknown id says so and exits 1."""
    out = project.invoke("run")
    assert out.exit_code == 0, out.output
    assert "0 finished" in out.stdout
    out = project.invoke("run", "--only", "ghost")
    assert out.exit_code == 1 and "ghost: no such task" in out.stdout
