"""The scheduler with the local executor: real worker subprocesses, real git, scripted models."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent, RunSummary
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.protocols import Slot
from agent_runner.core.result import Outcome, TaskResult, WorkRequest
from agent_runner.core.task import TaskStatus
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.queue.store import Queue
from agent_runner.worker.job import run_job


def _run(
    project: Project, *, executor: Any = None, **overrides: Any
) -> tuple[RunSummary, list[RunEvent], Queue]:
    config = load_config(project.root, overrides=overrides)
    queue = open_queue(project.root, config)
    state = config.path(project.root, "state_dir")
    executor = executor or LocalExecutor(workdir=state, workers=config.workers, cwd=project.root)
    events: list[RunEvent] = []
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    summary = scheduler.run()
    executor.close()
    return summary, events, queue


def _intervals(project: Project) -> dict[str, tuple[float, float]]:
    """Return when each finished attempt's worker ran (a slot's next task may be claimed while this lands)."""
    spans: dict[str, tuple[float, float]] = {}
    for event in project.queue_events():
        if event["type"] == "finished":
            result = event["result"]
            spans[event["task"]] = (result["started_at"], result["started_at"] + result["duration_s"])
    return spans


def test_finished_task_lands_as_agent_branch(project: Project) -> None:
    """A change task (worker: a real `run-agents exec -` process) lands as agent/<id> in the source repo."""
    project.task("greet", project.edit_script("greet", "greet.py", "print('hi')\n"), title="Add greet.py")
    state = project.root / ".agent-runner"
    summary, events, queue = _run(
        project, executor=LocalExecutor(workdir=state, fork=False, cwd=project.root)
    )
    assert summary.finished == ["greet"] and summary.exit_code == 0
    assert git(project.root, "show", "agent/greet:greet.py") == "print('hi')"
    assert git(project.root, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert queue.refresh()["greet"].status == TaskStatus.FINISHED
    assert [e.kind for e in events] == ["started", "finished"]


def test_three_tasks_on_two_workers_run_in_parallel(project: Project) -> None:
    """With 2 workers, 3 slow tasks overlap in time, never more than 2 at once."""
    for name in ("a", "b", "c"):
        project.task(
            name, project.edit_script(name, f"{name}.py", "x = 1\n", delay_s=1.0), paths=[f"{name}.py"]
        )
    summary, _, _ = _run(project, workers=2)
    assert sorted(summary.finished) == ["a", "b", "c"]
    spans = _intervals(project)
    overlapping = [
        (x, y)
        for x in spans
        for y in spans
        if x < y and spans[x][0] < spans[y][1] and spans[y][0] < spans[x][1]
    ]
    assert overlapping
    for x, (start, _) in spans.items():
        assert sum(1 for s, e in spans.values() if s <= start < e) <= 2, x


def test_tasks_with_overlapping_paths_are_serialized(project: Project) -> None:
    """Two tasks on the same file never run at the same time, even with free workers."""
    project.task("one", project.edit_script("one", "calc.py", "A = 1\n", delay_s=0.3), paths=["calc.py"])
    project.task("two", project.edit_script("two", "calc.py", "B = 2\n", delay_s=0.3), paths=["."])
    summary, _, _ = _run(project, workers=2)
    assert sorted(summary.finished) == ["one", "two"]
    (s1, e1), (s2, e2) = _intervals(project).values()
    assert e1 <= s2 or e2 <= s1


def test_invalid_task_file_is_reported_and_valid_ones_run(project: Project) -> None:
    """A task file with a bad field is reported once, naming the file, and the valid task beside it runs."""
    project.task("good", project.edit_script("good", "good.py", "ok = True\n"))
    (project.tasks / "bad.md").write_text("---\nkind: refactor-everything\n---\nNo.\n")
    summary, events, _ = _run(project)
    assert summary.finished == ["good"]
    invalid = [e for e in events if e.kind == "invalid"]
    assert len(invalid) == 1 and "bad.md" in invalid[0].message and "kind" in invalid[0].message
    assert summary.exit_code == 0


def test_infrastructure_failure_is_requeued_without_spending_an_attempt(
    project: Project, tmp_path: Path
) -> None:
    """A setup network error re-queues the task; the retry finishes and no attempt was spent."""
    marker = tmp_path / "network-was-down"
    setup = f"test -f {marker} || {{ touch {marker}; echo 'Could not resolve host: pypi.org' >&2; exit 1; }}"
    project.task("flaky", project.edit_script("flaky", "f.py", "f = 1\n"), max_attempts=1)
    summary, events, queue = _run(project, setup=[setup])
    assert summary.finished == ["flaky"]
    state = queue.refresh()["flaky"]
    assert (state.attempt, state.spent, state.infra) == (2, 0, 1)
    assert [e.kind for e in events] == ["started", "requeued", "started", "finished"]


def test_task_failure_spends_attempts_until_failed(project: Project) -> None:
    """An agent that changes nothing fails each attempt; after max_attempts the task fails with the reason."""
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "done?"}}]}
    project.task("idle", project.script("idle", [finish] * 3), max_attempts=2)
    summary, _, queue = _run(project, reflection_rounds=0)
    assert "idle" in summary.failed and "non-empty-diff" in summary.failed["idle"]
    assert "attempt 2 of 2" in summary.failed["idle"]
    assert queue.refresh()["idle"].spent == 2 and summary.exit_code == 1


def test_models_no_attempt_can_use_are_blocked_not_failed(project: Project) -> None:
    """A typo'd provider makes the task file invalid; a missing plug-in or script blocks its spec at once."""
    project.task("typo", "antropic:claude-x")
    for name in ("plugin1", "plugin2"):
        project.task(name, "no_such_package.models:Model:x")
    project.task("script", "scripted:/nonexistent/script.json")
    project.task("fine", project.edit_script("fine", "fine.py", "x = 2\n"))
    summary, events, queue = _run(project, workers=1)
    assert "tasks/typo.md: field 'model': unknown model provider 'antropic'" in summary.invalid["typo"]
    assert summary.finished == ["fine"] and not summary.failed
    assert (
        "cannot import model module 'no_such_package.models'"
        in summary.blocked_models["no_such_package.models:Model:x"]
    )
    assert "/nonexistent/script.json" in summary.blocked_models["scripted:/nonexistent/script.json"]
    states = queue.refresh()
    waiting = ["plugin1", "plugin2", "script"]
    assert sorted(s.id for s in states.values() if s.status == TaskStatus.QUEUED) == waiting
    assert sum(states[k].attempt for k in waiting) == 2 and all(states[k].spent == 0 for k in waiting)
    assert [e.kind for e in events].count("model_blocked") == 2 and summary.exit_code == 1


def test_an_unusable_default_model_is_blocked_before_any_claim(project: Project) -> None:
    """A default model that names no provider blocks its tasks at once, saying where the default is set."""
    (project.tasks / "plain.md").write_text("---\nkind: change\n---\nDo the chore.\n")
    summary, events, queue = _run(project, model="bogus")
    assert "model spec 'bogus' names no provider; use provider:name" in summary.blocked_models["bogus"]
    assert "AGENT_RUNNER_MODEL" in summary.blocked_models["bogus"]
    assert [e.kind for e in events] == ["model_blocked", "held"] and queue.refresh()["plain"].attempt == 0
    assert summary.held["plain"] == summary.blocked_models["bogus"]


PLANT = (  # a commit whose tree holds .git/config: what git clients refuse to check out
    "blob=$(echo x | git hash-object -w --stdin)"
    " && inner=$(printf '100644 blob %s\\tconfig\\n' $blob | git mktree)"
    " && tree=$(printf '040000 tree %s\\t.git\\n' $inner | git mktree)"
    " && git update-ref HEAD $(git -c user.name=a -c user.email=a@a commit-tree $tree -p HEAD -m plant)"
    " && git read-tree HEAD^ && echo done > out.txt"
)


def test_commits_the_agent_makes_never_land(project: Project) -> None:
    """An agent that commits a .git tree (what git clients refuse to check out) in its own `.git`: only the
    runner's commit of the final tree lands, and the planted objects stay out of the source repo."""
    plant = {"tool_calls": [{"name": "bash", "arguments": {"command": PLANT}}]}
    finish = {"tool_calls": [{"name": "finish", "arguments": {"summary": "done"}}]}
    project.task("planted", project.script("planted", [plant, finish]), max_attempts=1)
    summary, _, _ = _run(project)
    assert summary.finished == ["planted"], summary.failed
    assert git(project.root, "diff", "--name-only", "main", "agent/planted") == "out.txt"
    assert git(project.root, "rev-parse", "agent/planted^") == git(project.root, "rev-parse", "main")
    assert "plant" not in git(project.root, "log", "--all", "--format=%s").splitlines()


def test_model_auth_error_stops_dispatching_to_that_model(project: Project) -> None:
    """A rejected key is reported once; other tasks on that model stay queued, tasks on other models run."""
    bad = project.script("bad-key", [{"error": "auth"}])
    for name in ("k1", "k2", "k3"):
        project.task(name, bad)
    project.task("fine", project.edit_script("fine", "fine.py", "x = 2\n"))
    summary, events, queue = _run(project, workers=1)
    assert [e.kind for e in events].count("model_blocked") == 1
    assert summary.finished == ["fine"] and bad in summary.blocked_models
    states = queue.refresh()
    assert sorted(s.id for s in states.values() if s.status == TaskStatus.QUEUED) == ["k1", "k2", "k3"]
    assert all(states[k].spent == 0 for k in ("k1", "k2", "k3")) and summary.exit_code == 1


class RegrantingExecutor:
    """Runs the job in-process, but the lease is lost and re-granted while it runs (a late result)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.regranted = False

    def slots(self) -> list[Slot]:
        return [Slot("inline-1")]

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        result = run_job(request, workdir=self.project.root / ".agent-runner")
        if not self.regranted:
            self.regranted = True
            other = Queue(self.project.tasks / "queue.jsonl")
            other.release(request.task.id, request.attempt, "lease expired (simulated)")
        return result

    def cancel(self, task_id: str, attempt: int) -> None:
        return None

    def close(self) -> None:
        return None


def test_late_result_of_a_regranted_attempt_is_discarded(project: Project) -> None:
    """A result for an attempt that lost its lease is discarded; the task runs again and lands once."""
    project.task("late", project.edit_script("late", "late.py", "x = 3\n"))
    _, events, queue = _run(project, executor=RegrantingExecutor(project))
    # the freed slot starts attempt 2 before attempt 1's late result is looked at
    assert [(e.kind, e.attempt) for e in events] == [
        ("started", 1),
        ("started", 2),
        ("discarded", 1),
        ("finished", 2),
    ]
    assert [e["attempt"] for e in queue.events("late") if e["type"] == "finished"] == [2]


class StaleThenRejectingExecutor(RegrantingExecutor):
    """Attempt 1 loses its lease while it runs and then reports an accepted result; later attempts fail."""

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        if request.attempt == 1:
            return super().run(request, slot)
        return TaskResult(
            task_id=request.task.id, attempt=request.attempt, outcome=Outcome.REJECTED, reason="gates red"
        )


def test_stale_attempt_never_moves_its_branch(project: Project) -> None:
    """The late accepted result of a re-granted attempt is discarded before its branch moves."""
    project.task("stale", project.edit_script("stale", "stale.py", "x = 4\n"), max_attempts=2)
    _, events, queue = _run(project, executor=StaleThenRejectingExecutor(project))
    assert ("discarded", 1) in [(e.kind, e.attempt) for e in events]
    assert queue.refresh()["stale"].status == TaskStatus.FAILED
    branches = git(project.root, "branch", "--list", "agent/*")
    assert branches == ""  # before the fence, attempt 1's commit landed as agent/stale anyway


class InlineExecutor(RegrantingExecutor):
    """Runs each job in-process on its own thread, two slots, leases untouched."""

    def slots(self) -> list[Slot]:
        return [Slot("inline-1"), Slot("inline-2")]

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        return run_job(request, workdir=self.project.root / ".agent-runner")


def test_a_slow_landing_does_not_hold_up_other_results(project: Project, monkeypatch: Any) -> None:
    """While one result's commits are still coming in, another finished result is recorded first."""
    from agent_runner.coordinator import attempts as attempts_module

    project.task("slow", project.edit_script("slow", "s.py", "s = 1\n"), paths=["s.py"])
    project.task("fast", project.edit_script("fast", "f.py", "f = 1\n", delay_s=0.3), paths=["f.py"])
    fast_recorded = threading.Event()
    real_import = attempts_module.import_result

    def import_result(root: Path, state_dir: Path, task: Any, result: TaskResult, **kwargs: Any) -> Any:
        if task.id == "slow":  # a big bundle, say: it lands only after `fast` was recorded (or 10 s)
            assert fast_recorded.wait(10), "the loop waited for slow's landing before recording fast"
        return real_import(root, state_dir, task, result, **kwargs)

    monkeypatch.setattr(attempts_module, "import_result", import_result)

    def on_event(event: RunEvent) -> None:
        if event.kind == "finished" and event.task == "fast":
            fast_recorded.set()

    config = load_config(project.root, overrides={"workers": 2})
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, InlineExecutor(project), config=config, root=project.root, on_event=on_event)
    summary = scheduler.run()
    assert summary.finished == ["fast", "slow"]
    assert git(project.root, "show", "agent/slow:s.py") == "s = 1"


class GarbledBundleExecutor(InlineExecutor):
    """A remote-style worker whose accepted result carries a bundle that is not base64."""

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        return TaskResult(
            task_id=request.task.id, attempt=request.attempt, outcome=Outcome.ACCEPTED, bundle_b64="abc"
        )


def test_a_garbled_result_bundle_is_an_infrastructure_failure(project: Project) -> None:
    """A result whose bundle cannot be decoded is re-queued, then fails with the reason; the run goes on."""
    project.task("garbled", project.edit_script("garbled", "g.py", "g = 1\n"))
    summary, events, _ = _run(
        project, executor=GarbledBundleExecutor(project), infra_retries=1, backoff_seconds=0
    )
    assert [e.kind for e in events if e.task == "garbled"] == ["started", "requeued", "started", "failed"]
    assert "not valid base64" in summary.failed["garbled"]
    assert git(project.root, "branch", "--list", "agent/*") == ""


def test_only_and_budget_limit_what_runs(project: Project) -> None:
    """--only runs just the named tasks; a task starts only if its cost limit fits the budget left."""
    for name in ("p1", "p2", "p3", "other"):
        edit = {"name": "bash", "arguments": {"command": f"echo > {name}.txt"}}
        turns = [
            {"cost_usd": 0.4, "tool_calls": [edit]},
            {"cost_usd": 0.0, "tool_calls": [{"name": "finish", "arguments": {"summary": "ok"}}]},
        ]
        project.task(name, project.script(name, turns), limits={"cost_usd": 1.0})
    config = load_config(project.root, overrides={"workers": 1, "budget_usd": 1.5})
    queue = open_queue(project.root, config)
    executor = LocalExecutor(workdir=config.path(project.root, "state_dir"), workers=1, cwd=project.root)
    events: list[RunEvent] = []
    only = ["p1", "p2", "p3"]
    scheduler = Scheduler(
        queue, executor, config=config, root=project.root, only=only, on_event=events.append
    )
    summary = scheduler.run()
    executor.close()
    assert summary.finished == ["p1", "p2"] and round(summary.cost_usd, 6) == 0.8  # p3 would risk 1.8 > 1.5
    assert [e.kind for e in events][-1] == "budget"
    states = queue.refresh()
    assert states["p3"].status == states["other"].status == TaskStatus.QUEUED


def _start_in_thread(project: Project, **overrides: Any) -> tuple[Scheduler, list[RunEvent], Any]:
    import threading

    config = load_config(project.root, overrides=overrides)
    queue = open_queue(project.root, config)
    executor = LocalExecutor(workdir=config.path(project.root, "state_dir"), workers=1, cwd=project.root)
    events: list[RunEvent] = []
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    box: dict[str, RunSummary] = {}
    thread = threading.Thread(target=lambda: box.update(summary=scheduler.run()))
    thread.start()
    deadline = time.monotonic() + 30
    while not any(e.kind == "started" for e in events) and time.monotonic() < deadline:
        time.sleep(0.05)

    def finish() -> RunSummary:
        thread.join(timeout=60)
        executor.close()
        return box["summary"]

    return scheduler, events, finish


def test_first_interrupt_lets_running_tasks_finish(project: Project) -> None:
    """stop() (first Ctrl-C): the running task finishes and lands, the queued one is not started."""
    project.task("run1", project.edit_script("run1", "r1.py", "a = 1\n", delay_s=1.0), priority=1)
    project.task("run2", project.edit_script("run2", "r2.py", "b = 1\n"))
    scheduler, events, finish = _start_in_thread(project)
    scheduler.stop()
    summary = finish()
    assert summary.finished == ["run1"] and summary.exit_code == 130
    assert [e.kind for e in events] == ["started", "finished"]
    assert git(project.root, "show", "agent/run1:r1.py") == "a = 1"


def test_second_interrupt_cancels_and_releases_without_spending(project: Project) -> None:
    """cancel() (second Ctrl-C): the worker is killed at once and the task is queued again, unspent."""
    project.task("slow", project.edit_script("slow", "s.py", "c = 1\n", delay_s=30))
    scheduler, events, finish = _start_in_thread(project)
    started = time.monotonic()
    scheduler.cancel()
    summary = finish()
    assert time.monotonic() - started < 10 and summary.exit_code == 130
    state = open_queue(project.root, load_config(project.root)).refresh()["slow"]
    assert (state.status, state.spent) == (TaskStatus.QUEUED, 0)
    assert [e.kind for e in events] == ["started", "cancelled"]
    assert git(project.root, "branch", "--list", "agent/slow") == ""


def test_killed_worker_is_an_infrastructure_failure(project: Project) -> None:
    """A worker killed mid-task (SIGKILL) re-queues the task without spending an attempt; the retry lands."""
    import signal

    project.task("crash", project.edit_script("crash", "c.py", "d = 1\n", delay_s=1.5), max_attempts=1)
    scheduler, events, finish = _start_in_thread(project)
    executor: LocalExecutor = scheduler.executor  # type: ignore[assignment]
    deadline = time.monotonic() + 20
    while not executor._pids and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = next(iter(executor._pids.values()))
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:  # forked a moment ago: not yet the leader of its own group
        os.kill(pid, signal.SIGKILL)
    summary = finish()
    assert summary.finished == ["crash"]
    assert [e.kind for e in events] == ["started", "requeued", "started", "finished"]
    assert "worker exited with -9" in events[1].message
    state = open_queue(project.root, load_config(project.root)).refresh()["crash"]
    assert (state.spent, state.infra) == (0, 1)


def test_model_keys_never_reach_the_worker_environment(project: Project, monkeypatch: Any) -> None:
    """The coordinator's model key travels in the request, not in the worker's or the agent's environment."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret-value-123456")
    command = "{ env; tr '\\0' '\\n' < /proc/$PPID/environ; } > seen.txt"
    turns = [
        {"tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "looked"}}]},
    ]
    project.task("peek", project.script("peek", turns))
    summary, _, _ = _run(project)
    assert summary.finished == ["peek"]
    seen = git(project.root, "show", "agent/peek:seen.txt")
    assert "PATH=" in seen and "sk-ant-test-secret" not in seen and "ANTHROPIC_API_KEY" not in seen


class RecordingPublisher:
    """A publisher that records what it was asked to publish."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []

    def publish(self, task: Any, result: TaskResult, repo: Path) -> str | None:
        self.published.append((task.id, git(repo, "rev-parse", task.branch_name)))
        return f"https://example.invalid/pull/{len(self.published)}"


def test_finished_but_unpublished_task_is_published_by_the_next_run(project: Project) -> None:
    """A task that finished before the coordinator died, unpublished, is published once by the next run."""
    project.task("pub", project.edit_script("pub", "p.py", "p = 1\n"))
    summary, _, _ = _run(project)  # no publisher: like a coordinator killed right after `finished`
    assert summary.finished == ["pub"]
    publisher = RecordingPublisher()
    config = load_config(project.root)
    for _ in range(2):
        executor = LocalExecutor(workdir=config.path(project.root, "state_dir"), cwd=project.root)
        queue = open_queue(project.root, config)
        Scheduler(queue, executor, config=config, root=project.root, publisher=publisher).run()
        executor.close()
    assert publisher.published == [("pub", git(project.root, "rev-parse", "agent/pub"))]
    assert open_queue(project.root, config).refresh()["pub"].pr_url == "https://example.invalid/pull/1"
