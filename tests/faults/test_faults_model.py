"""Model server faults through the real SDKs and the real job: each ends in its class in bounded time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from faults_helpers import Project, Scenario, json_events, task_types

from agent_runner.config.runner import load_config
from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.testing.fake_llm import FakeLLMServer, error, hang, raw, raw_json, reset, turn
from agent_runner.testing.fake_llm_wire import Reply
from agent_runner.testing.scripts import write_command
from agent_runner.worker.job import run_job

KEYS = {"ANTHROPIC_API_KEY": "test-key-anthropic", "OPENAI_API_KEY": "test-key-openai"}
RETRIES = (
    1  # models.max_retries: each fault is served N = RETRIES + 1 times to get past the SDK's own retries
)
N = RETRIES + 1
INFRA = Outcome.INFRA


def _good() -> list[Reply]:
    """The replies of an attempt that edits a file and finishes."""
    return [turn("edit", [("bash", {"command": write_command("fixed.py", "x = 1\n")})]), _finish()]


def _finish() -> Reply:
    return turn("done", [("finish", {"summary": "wrote fixed.py"})])


def _broken_arguments() -> Reply:
    """An OpenAI-compatible reply whose tool call arguments are not JSON (common with small local models)."""
    call = {
        "id": "call_bad",
        "type": "function",
        "function": {"name": "bash", "arguments": '{"command": "ls'},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    return raw_json(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 1,
            "model": "f",
            "choices": [choice],
            "usage": usage,
        }
    )


@dataclass
class Fault:
    """One model-server fault, the replies that inject it, and the outcome its attempt must end in."""

    name: str
    replies: list[Reply]
    expect: Outcome
    provider: str = "anthropic"
    default: Reply | None = None
    reason: str = ""


FAULTS = [
    Fault("429 retry-after", [error(429, retry_after=1)] * N, INFRA, reason="unavailable"),
    Fault("429 retry-after 1 h", [error(429, retry_after=3600)], INFRA, reason="wait"),
    Fault("529 overloaded", [error(529, retry_after_ms=10)] * N, INFRA, reason="unavailable"),
    Fault(
        "500 server error",
        [error(500, retry_after_ms=10)] * (RETRIES + 1),
        Outcome.INFRA,
        reason="unavailable",
    ),
    Fault("connection reset", [reset()] * N, INFRA, reason="unavailable"),
    Fault("hang past timeout", [hang(8.0)] * N, INFRA, reason="timed out"),
    Fault(
        "invalid JSON",
        [raw(b'{"id": "msg_1", "content": [')] * (RETRIES + 1),
        Outcome.INFRA,
        reason="unavailable",
    ),
    Fault("401 bad key", [error(401, "invalid x-api-key")], Outcome.MODEL_AUTH, reason="key"),
    Fault("broken tool arguments", [_broken_arguments(), *_good()], Outcome.ACCEPTED, provider="openai"),
    Fault(
        "never calls tools",
        [],
        Outcome.REJECTED,
        default=turn("Looks fine; nothing to do."),
        reason="called no tool",
    ),
]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fake LLM server (replies are queued by each test)."""
    with FakeLLMServer() as fake:
        yield fake


def _models_config(project: Project, server: FakeLLMServer) -> None:
    project.configure(
        f'[tool.agent-runner.models]\nanthropic_base_url = "{server.anthropic_base_url}"\n'
        f'openai_base_url = "{server.openai_base_url}"\nmax_retries = {RETRIES}\ntimeout_s = 1.0\n'
    )


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.replace(" ", "-") for f in FAULTS])
def test_model_fault_ends_in_the_right_class(
    project: Project, scenario: Scenario, server: FakeLLMServer, fault: Fault
) -> None:
    """One attempt of the real job against the faulty server ends in the fault's outcome, in bounded time."""
    scenario.name = f"model fault: {fault.name}"
    server.default = fault.default or server.default
    server.enqueue(*fault.replies)
    _models_config(project, server)
    spec = "anthropic:claude-test" if fault.provider == "anthropic" else "openai:gpt-test"
    task = load_task_file(project.task("flaky", spec, reflection_rounds=0))
    config = load_config(project.root).model_dump(mode="json", by_alias=True)
    request = WorkRequest(task=task, repo=str(project.root), config=config, secrets=KEYS, model=spec)
    started = time.monotonic()
    result = run_job(request, workdir=project.state)
    elapsed = time.monotonic() - started
    assert result.outcome == fault.expect, result.reason
    assert fault.reason in result.reason, result.reason
    assert elapsed < 15, f"{fault.name} took {elapsed:.0f} s"
    if fault.name == "broken tool arguments":
        answer = json.dumps(server.requests[1].json["messages"][-1])
        assert "could not be used" in answer and "not valid JSON" in answer
    if fault.expect == Outcome.MODEL_AUTH:
        assert len(server.requests) == 1  # a bad key is not retried
    scenario.outcome = (
        f"{result.outcome}: {(result.reason or 'finished').splitlines()[0][:70]} ({elapsed:.1f} s)"
    )


def test_rate_limited_attempt_is_requeued_unspent_then_finishes(
    project: Project, scenario: Scenario, server: FakeLLMServer
) -> None:
    """`run`: a 429 past the SDK's retries re-queues the task, no attempt spent; it finishes later."""
    server.enqueue(*[error(429, retry_after_ms=10)] * N, *_good())
    _models_config(project, server)
    project.task("flaky", "anthropic:claude-test", max_attempts=1, reflection_rounds=0)
    out = project.cli("run", "--json", env=KEYS, timeout=60)
    events = [e for e in project.events() if e["type"] != "heartbeat"]
    assert task_types(events, "flaky") == ["queued", "claimed", "released", "claimed", "finished"], out.stdout
    released = next(e for e in events if e["type"] == "released")
    assert (released["infra"] is True and "rate" in released["reason"].lower()) or "429" in released["reason"]
    assert out.returncode == 0
    scenario.outcome = f"re-queued unspent ({released['reason'][:50]}), then finished"


@pytest.mark.parametrize(
    ("status", "detail"), [(401, "invalid x-api-key"), (404, "model: claude-test")], ids=["key", "name"]
)
def test_bad_key_or_model_name_stops_dispatching_to_that_model(
    project: Project, scenario: Scenario, server: FakeLLMServer, status: int, detail: str
) -> None:
    """`run`: a 401 or a 404 blocks the model with one message; its other tasks stay queued, undispatched."""
    server.enqueue(error(status, detail))
    _models_config(project, server)
    project.configure("workers = 1\n")
    for task_id in ("first", "second"):
        project.task(task_id, "anthropic:claude-test", max_attempts=1)
    out = project.cli("run", "--json", env=KEYS, timeout=60)
    blocked = [e for e in json_events(out.stdout) if e.get("event") == "model_blocked"]
    assert len(blocked) == 1 and "claude-test" in blocked[0]["message"], out.stdout
    claimed = [e["task"] for e in project.events() if e["type"] == "claimed"]
    assert len(claimed) == 1 and len(server.requests) == 1
    assert not [e for e in project.events() if e["type"] == "failed"]  # nothing failed: the tasks wait
    assert out.returncode == 1
    scenario.outcome = f"model blocked after one call: {blocked[0]['message'][:60]}"
