"""Model server faults through the real SDKs and the real job: each ends in the right class, in bounded time."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest
from faults_helpers import Project, Scenario, json_events, task_types, write_command

from agent_runner.testing.fake_llm import FakeLLMServer, error, hang, raw, raw_json, reset, turn
from agent_runner.testing.fake_llm_wire import Reply

KEYS = {"ANTHROPIC_API_KEY": "test-key-anthropic", "OPENAI_API_KEY": "test-key-openai"}
RETRIES = 1  # models.max_retries: each fault is served RETRIES + 1 times to get past the SDK's own retries


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
    """One model-server fault, the replies that inject it, and the class it must end in."""

    name: str
    replies: list[Reply]
    expect: str  # infra | rejected | model_auth | accepted
    provider: str = "anthropic"
    default: Reply | None = None
    extra_tasks: list[str] = field(default_factory=list)


FAULTS = [
    Fault("429 retry-after", [error(429, retry_after=0.05)] * (RETRIES + 1) + _good(), "infra"),
    Fault("529 overloaded", [error(529, retry_after_ms=10)] * (RETRIES + 1) + _good(), "infra"),
    Fault("500 server error", [error(500, retry_after_ms=10)] * (RETRIES + 1) + _good(), "infra"),
    Fault("connection reset", [reset()] * (RETRIES + 1) + _good(), "infra"),
    Fault("hang past timeout", [hang(8.0)] * (RETRIES + 1) + _good(), "infra"),
    Fault("invalid JSON", [raw(b'{"id": "msg_1", "content": [')] * (RETRIES + 1) + _good(), "infra"),
    Fault("401 bad key", [error(401, "invalid x-api-key")], "model_auth", extra_tasks=["second"]),
    Fault("broken tool arguments", [_broken_arguments(), *_good()], "accepted", provider="openai"),
    Fault("never calls tools", [], "rejected", default=turn("Looks fine to me; nothing to do.")),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name.replace(" ", "-") for f in FAULTS])
def test_model_fault_ends_in_the_right_class(project: Project, scenario: Scenario, fault: Fault) -> None:
    """The fault is classified (infra re-queue unspent / task failure / model stopped) within bounded time."""
    scenario.name = f"model fault: {fault.name}"
    spec = "anthropic:claude-test" if fault.provider == "anthropic" else "openai:gpt-test"
    with FakeLLMServer(default=fault.default) as server:
        server.enqueue(*fault.replies)
        project.configure("workers = 1\n")
        project.configure(
            f'[tool.agent-runner.models]\nanthropic_base_url = "{server.anthropic_base_url}"\n'
            f'openai_base_url = "{server.openai_base_url}"\nmax_retries = {RETRIES}\ntimeout_s = 1.0\n'
        )
        for task_id in ["flaky", *fault.extra_tasks]:
            project.task(task_id, spec, max_attempts=1, reflection_rounds=0)
        started = time.monotonic()
        out = project.cli("run", "--json", env=KEYS, timeout=60)
        elapsed = time.monotonic() - started
        requests = list(server.requests)
    events = project.events()
    types = task_types(events, "flaky")
    stream = json_events(out.stdout)
    assert elapsed < 30, f"{fault.name} took {elapsed:.0f} s"
    assert "failed" not in types or fault.expect == "rejected", types
    if fault.expect == "infra":
        released = [e for e in events if e["type"] == "released" and e["task"] == "flaky"]
        assert types == ["queued", "claimed", "released", "claimed", "finished"], (types, out.stdout)
        assert released[0]["infra"] is True and "unavailable" in released[0]["reason"]
        assert out.returncode == 0, out.stdout
        outcome = f"infra re-queue, attempt unspent, then finished ({released[0]['reason'][:60]})"
    elif fault.expect == "model_auth":
        blocked = [e for e in stream if e.get("event") == "model_blocked"]
        assert len(blocked) == 1 and "claude-test" in blocked[0]["message"], out.stdout
        assert "claimed" not in task_types(events, "second"), "no dispatch to a model with a bad key"
        assert len(requests) == 1 and out.returncode == 1
        outcome = f"model blocked after 1 call: {blocked[0]['message'][:60]}"
    elif fault.expect == "accepted":
        assert types == ["queued", "claimed", "finished"], (types, out.stdout)
        answer = json.dumps(requests[1].json["messages"][-1])
        assert "could not be used" in answer and "call_bad" in answer
        outcome = "reported back to the model; task finished"
    else:
        failed = [e for e in events if e["type"] == "failed"]
        assert types == ["queued", "claimed", "failed"] and failed[0]["final"], types
        assert out.returncode == 1
        outcome = f"task failure: {failed[0]['reason'].splitlines()[0][:60]}"
    scenario.outcome = f"{outcome} in {elapsed:.1f} s"


def test_model_fault_suite_covers_every_class() -> None:
    """The parametrized faults cover all four expected classes (a guard against trimming the list)."""
    assert {f.expect for f in FAULTS} == {"infra", "rejected", "model_auth", "accepted"}
