"""A real run (local workers, real SDK) against the fake LLM server's 429-above-N mode."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.task import TaskStatus
from agent_runner.executors.local import LocalExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.fake_llm import FakeLLMServer, InFlightLimit, RecordedRequest, Reply, turn
from agent_runner.testing.scripts import ScriptedTasks, bash_turn, finish_turn, write_command

N_LIMIT = 1
N_TASKS = 3
KEY = "test-key-anthropic"


def edit_or_finish(limit: InFlightLimit) -> Callable[[RecordedRequest], Reply]:
    """The agent's session: write a file, then finish once a tool result is back. The first answer waits
    until the server has refused a request (the run really meets the limit, however loaded the machine)."""

    def reply(request: RecordedRequest) -> Reply:
        deadline = time.monotonic() + 20
        while limit.stats().n_limited == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return session_turn(request)

    return reply


def session_turn(request: RecordedRequest) -> Reply:
    """Write out.txt first; finish once a tool result is back."""
    messages = request.json["messages"]
    answered = any(
        block.get("type") == "tool_result"
        for m in messages
        if isinstance(m["content"], list)
        for block in m["content"]
    )
    if answered:
        return turn("done", [("finish", {"summary": "wrote it"})], delay_s=0.2)
    return turn("edit", [("bash", {"command": write_command("out.txt", "done\n")})], delay_s=0.2)


@pytest.fixture
def server() -> Iterator[tuple[FakeLLMServer, InFlightLimit]]:
    """The fake server: more than N_LIMIT requests in flight get 429 with retry-after 0.3 s."""
    limit = InFlightLimit(N_LIMIT, retry_after_s=0.3)
    with FakeLLMServer(default=edit_or_finish(limit), in_flight_limit=limit) as fake:
        yield fake, limit


def test_many_workers_on_one_limited_key_finish_every_task_spending_no_attempt(
    project: ScriptedTasks, server: tuple[FakeLLMServer, InFlightLimit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 workers, a limit of 1 in flight: all finish, no attempt spent on a 429, throttling is reported;
    a task of another model (scripted) runs beside them."""
    fake, limit = server
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    root = project.tasks.parent
    (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text()
        + f'\n[tool.agent-runner.models]\nanthropic_base_url = "{fake.anthropic_base_url}"\nmax_retries = 1\n'
        "timeout_s = 10\n\n[tool.agent-runner.rate_limits]\nlower_every_s = 0\nraise_every_s = 60\n",
        encoding="utf-8",
    )
    for i in range(N_TASKS):
        project.task(f"api{i}", "anthropic:claude-test", max_attempts=1, reflection_rounds=0)
    project.task("other", project.script("other", [bash_turn(write_command("o.txt", "o\n")), finish_turn()]))
    config = load_config(root, overrides={"workers": N_TASKS + 1})
    queue = open_queue(root, config)
    executor = LocalExecutor(workdir=config.path(root, "state_dir"), workers=N_TASKS + 1, cwd=root)
    events: list[RunEvent] = []
    try:
        summary = Scheduler(queue, executor, config=config, root=root, on_event=events.append).run()
    finally:
        executor.close()
    states = queue.refresh()
    assert sorted(summary.finished) == ["api0", "api1", "api2", "other"], summary.failed
    assert all(states[t].status == TaskStatus.FINISHED and states[t].spent == 0 for t in states), {
        t: (s.status, s.spent, s.infra) for t, s in states.items()
    }
    assert limit.stats().n_limited > 0  # the mode was hit: the run got 429s and got past them
    assert limit.stats().max_in_flight == N_LIMIT
    kinds = [e.kind for e in events]
    assert "throttled" in kinds, kinds  # the workers' reports reached the coordinator
    throttled = next(e for e in events if e.kind == "throttled")
    assert throttled.message.startswith("anthropic key ") and "429" in throttled.message
    assert KEY not in json.dumps([e.message for e in events])
    assert set(summary.throttled) == {throttled.message.split(":")[0]}
    released = [e for e in events if e.kind == "requeued"]
    assert all("no attempt spent" in e.message for e in released), [e.message for e in released]
