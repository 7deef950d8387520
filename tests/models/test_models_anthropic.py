"""AnthropicModel through the real anthropic SDK against the fake LLM server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import (
    ContextExceededError,
    ModelAuthError,
    ModelFatalError,
    ModelNotFoundError,
    ModelUnavailableError,
)
from agent_runner.core.messages import Message, Role, StopReason, ToolResult, ToolSpec
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.testing.fake_llm import (
    FakeLLMServer,
    context_too_long,
    error,
    hang,
    raw,
    raw_json,
    reset,
    turn,
)

_OPEN: list[AnthropicModel] = []


@pytest.fixture(autouse=True)
def _close_models() -> Iterator[None]:
    """Close every model a test made, so no socket is left to the garbage collector."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(server: FakeLLMServer, config: ModelsConfig, name: str = "claude-test") -> AnthropicModel:
    model = AnthropicModel(name, api_key="test", config=config, base_url=server.anthropic_base_url)
    _OPEN.append(model)
    return model


def results(*pairs: tuple[str, str]) -> Message:
    return Message(role=Role.USER, tool_results=[ToolResult(call_id=i, content=c) for i, c in pairs])


def test_tool_call_round_trip(server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]) -> None:
    """A tool call comes back as a ToolCall and its result goes back as a tool_result with the same id."""
    model = make(server, fast)
    server.enqueue(turn("looking", [("bash", {"command": "ls"}), ("bash", {"command": "pwd"})]))
    first = model.query("system prompt", [Message.user("task")], tools)
    assert [c.arguments for c in first.message.tool_calls] == [{"command": "ls"}, {"command": "pwd"}]
    assert first.stop_reason is StopReason.TOOL_USE and first.format_error is None
    ids = [c.id for c in first.message.tool_calls]
    transcript = [Message.user("task"), first.message, results((ids[0], "a.py"), (ids[1], "/w"))]
    server.enqueue(turn("", [("finish", {"summary": "done"})]))
    second = model.query("system prompt", transcript, tools)
    assert second.message.tool_calls[0].name == "finish"
    last_user = server.requests[1].json["messages"][-1]
    assert [b["tool_use_id"] for b in last_user["content"]] == ids  # all results of a turn in one message
    server.check_invariants()


def test_usage_and_cost(server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]) -> None:
    """Cache reads and writes map to Usage and a priced model reports its cost."""
    server.enqueue(
        turn(
            "",
            [("bash", {"command": "ls"})],
            usage={"input": 100, "output": 5, "cache_read": 1000, "cache_write": 20},
        )
    )
    reply = make(server, fast, "claude-haiku-4-5").query("s", [Message.user("t")], tools)
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (100, 5)
    assert (reply.usage.cache_read_tokens, reply.usage.cache_write_tokens) == (1000, 20)
    assert reply.cost_usd == pytest.approx((100 * 1.0 + 5 * 5.0 + 1000 * 0.1 + 20 * 1.25) / 1e6)


def test_unknown_model_has_tokens_but_no_cost(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """An unpriced model reports tokens with cost None."""
    server.enqueue(turn("", [("bash", {"command": "ls"})], usage={"input": 7, "output": 3}))
    reply = make(server, fast).query("s", [Message.user("t")], tools)
    assert reply.usage.total == 10 and reply.cost_usd is None


def test_cache_breakpoints_on_system_and_newest_user_turns(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """cache_control sits on the system prompt and the last block of the two newest user turns only."""
    model = make(server, fast)
    transcript: list[Message] = [Message.user("task")]
    for step in range(3):
        server.enqueue(turn("", [("bash", {"command": f"echo {step}"})]))
        reply = model.query("sys", transcript, tools)
        transcript += [reply.message, results((reply.message.tool_calls[0].id, f"out {step}"))]
    server.enqueue(turn("", [("finish", {"summary": "ok"})]))
    model.query("sys", transcript, tools)
    body = server.requests[-1].json
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    marked = [
        (i, j)
        for i, m in enumerate(body["messages"])
        for j, block in enumerate(m["content"])
        if "cache_control" in block
    ]
    user_turns = [i for i, m in enumerate(body["messages"]) if m["role"] == "user"]
    assert marked == [
        (user_turns[-2], len(body["messages"][user_turns[-2]]["content"]) - 1),
        (user_turns[-1], 0),
    ]
    assert len(marked) + 1 <= 4
    assert "cache_control" not in str(body["tools"])
    server.check_invariants()


def test_same_role_turns_are_merged(server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]) -> None:
    """Tool results followed by a user note become one user message, results first."""
    server.enqueue(turn("", [("bash", {"command": "ls"})]), turn("", [("finish", {"summary": "x"})]))
    model = make(server, fast)
    first = model.query("s", [Message.user("t")], tools)
    call_id = first.message.tool_calls[0].id
    model.query(
        "s", [Message.user("t"), first.message, results((call_id, "o")), Message.user("gate report")], tools
    )
    last = server.requests[1].json["messages"][-1]
    assert [b["type"] for b in last["content"]] == ["tool_result", "text"]
    assert len(server.requests[1].json["messages"]) == 3


def test_thinking_blocks_go_back_unchanged(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """A thinking block returned with a tool call is sent back, signature intact, before the tool_use."""
    model = make(server, fast)
    server.enqueue(turn("", [("bash", {"command": "ls"})], thinking="plan: list files"))
    first = model.query("s", [Message.user("t")], tools)
    server.enqueue(turn("", [("finish", {"summary": "x"})]))
    model.query(
        "s", [Message.user("t"), first.message, results((first.message.tool_calls[0].id, "o"))], tools
    )
    assistant = server.requests[1].json["messages"][1]["content"]
    assert assistant[0] == {"signature": "sig-1", "thinking": "plan: list files", "type": "thinking"}
    assert assistant[1]["type"] == "tool_use"


def test_big_max_tokens_needs_no_streaming(server: FakeLLMServer, tools: list[ToolSpec]) -> None:
    """An explicit timeout lets a large max_tokens through without the SDK's streaming ValueError."""
    server.enqueue(turn("", [("bash", {"command": "ls"})]))
    model = make(server, ModelsConfig(max_tokens=64_000, timeout_s=5))
    assert model.query("s", [Message.user("t")], tools).message.tool_calls
    assert server.requests[0].json["max_tokens"] == 64_000


@pytest.mark.parametrize(
    ("reply", "error_class", "words"),
    [
        (error(401, "invalid x-api-key"), ModelAuthError, "ANTHROPIC_API_KEY"),
        (error(403, "forbidden"), ModelAuthError, "HTTP 403"),
        (error(429, "limit", code="enforced_spend_limit_reached", retry_after_ms=5), ModelAuthError, "spend"),
        (error(400, "tools.0: bad schema"), ModelFatalError, "bad schema"),
        (error(404, "model: claude-nope"), ModelNotFoundError, "model not found"),
        (context_too_long(), ContextExceededError, "prompt is too long"),
        (raw(b"{not json"), ModelUnavailableError, "invalid JSON"),
    ],
)
def test_errors_are_translated(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], reply, error_class, words
) -> None:
    """Each HTTP failure becomes its runner error with a message that says what happened."""
    server.enqueue(reply, reply, reply)
    with pytest.raises(error_class, match=words) as caught:
        make(server, fast).query("s", [Message.user("t")], tools)
    assert type(caught.value) is error_class
    assert len(server.requests) == (3 if reply.status == 429 else 1)  # only 429 is retried


@pytest.mark.parametrize(
    "reply",
    [
        error(429, retry_after_ms=5),
        error(429, retry_after=0.01),
        error(529, retry_after_ms=5),
        error(500, retry_after_ms=5),
    ],
)
def test_transient_errors_are_retried_then_unavailable(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], reply
) -> None:
    """429/529/500 are retried by the SDK max_retries times, then surface quickly as ModelUnavailableError."""
    server.enqueue(reply, reply, reply)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=f"HTTP {reply.status}"):
        make(server, fast).query("s", [Message.user("t")], tools)
    assert len(server.requests) == fast.max_retries + 1
    assert time.monotonic() - started < 2


def test_transient_error_then_success(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """An overload followed by an answer is invisible to the caller."""
    server.enqueue(error(529, retry_after_ms=5), turn("", [("bash", {"command": "ls"})]))
    assert make(server, fast).query("s", [Message.user("t")], tools).message.tool_calls


def test_long_retry_after_is_not_slept_on(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """A 429 asking to wait an hour surfaces at once: the scheduler re-queues, no worker sleeps."""
    server.enqueue(error(429, retry_after=3600), error(429, retry_after=3600))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="retry-after 3600 s"):
        make(server, fast).query("s", [Message.user("t")], tools)
    assert time.monotonic() - started < 2 and len(server.requests) == 1


def test_hang_times_out_as_unavailable(server: FakeLLMServer, tools: list[ToolSpec]) -> None:
    """A server that never answers costs timeout_s per attempt, then ModelUnavailableError."""
    server.enqueue(hang(10))
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="timed out"):
        make(server, ModelsConfig(timeout_s=0.3, max_retries=0)).query("s", [Message.user("t")], tools)
    assert time.monotonic() - started < 3


def test_connection_reset_is_unavailable(server: FakeLLMServer, tools: list[ToolSpec]) -> None:
    """A reset connection surfaces as ModelUnavailableError after retries."""
    server.enqueue(reset(), reset())
    with pytest.raises(ModelUnavailableError, match="cannot reach"):
        make(server, ModelsConfig(timeout_s=2, max_retries=1)).query("s", [Message.user("t")], tools)


def test_unknown_tool_and_junk_are_format_errors(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """An unknown tool name or a body without content is a format error, not a crash."""
    server.enqueue(turn("", [("rm_rf", {})]), raw_json({"choices": []}))
    model = make(server, fast)
    unknown = model.query("s", [Message.user("t")], tools)
    assert "unknown tool 'rm_rf'" in (unknown.format_error or "") and not unknown.message.tool_calls
    junk = model.query("s", [Message.user("t")], tools)
    assert "called no tool" in (junk.format_error or "")


def test_tool_call_cut_off_at_max_tokens_is_a_format_error(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """A tool call truncated by the output limit is not run: it comes back as a format error."""
    content = [{"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {}}]
    body = {"id": "m", "type": "message", "role": "assistant", "model": "x", "content": content}
    usage = {"input_tokens": 1, "output_tokens": 1}
    server.enqueue(raw_json({**body, "stop_reason": "max_tokens", "usage": usage}))
    reply = make(server, fast).query("s", [Message.user("t")], tools)
    assert reply.stop_reason is StopReason.MAX_TOKENS
    assert "output token limit" in (reply.format_error or "") and not reply.message.tool_calls
