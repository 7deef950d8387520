"""OpenAIModel through the real openai SDK against the fake LLM server (an OpenAI-compatible server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

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
from agent_runner.models import get_model
from agent_runner.models.openai import OpenAIModel
from agent_runner.testing.fake_llm import FakeLLMServer, context_too_long, error, hang, raw, raw_json, turn

_OPEN: list[OpenAIModel] = []


@pytest.fixture(autouse=True)
def _close_models() -> Iterator[None]:
    """Close every model a test made, so no socket is left to the garbage collector."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def make(server: FakeLLMServer, config: ModelsConfig, name: str = "gpt-test") -> OpenAIModel:
    model = OpenAIModel(name, api_key="test", config=config, base_url=server.openai_base_url, cache_key="t1")
    _OPEN.append(model)
    return model


def completion(message: dict[str, Any], finish: str = "tool_calls") -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def call(name: str, arguments: Any, call_id: str = "c1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_call_round_trip(server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]) -> None:
    """Parallel tool calls come back parsed and each result goes back as its own `tool` message."""
    model = make(server, fast)
    server.enqueue(turn("", [("bash", {"command": "ls"}), ("bash", {"command": "pwd"})]))
    first = model.query("system prompt", [Message.user("task")], tools)
    assert first.stop_reason is StopReason.TOOL_USE and first.format_error is None
    ids = [c.id for c in first.message.tool_calls]
    tool_results = [ToolResult(call_id=ids[0], content="a.py"), ToolResult(call_id=ids[1], content="/w")]
    transcript = [Message.user("task"), first.message, Message(role=Role.USER, tool_results=tool_results)]
    server.enqueue(turn("", [("finish", {"summary": "done"})]))
    model.query("system prompt", transcript, tools)
    wire = server.requests[1].json["messages"]
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in wire[3:]] == ids
    server.check_invariants()


def test_usage_maps_cached_tokens_and_cost(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """prompt_tokens includes cached tokens; Usage.input excludes them and the cost uses the cached price."""
    server.enqueue(
        turn("", [("bash", {"command": "ls"})], usage={"input": 200, "cache_read": 800, "output": 10})
    )
    reply = make(server, fast, "gpt-5-mini").query("s", [Message.user("t")], tools)
    assert (reply.usage.input_tokens, reply.usage.cache_read_tokens, reply.usage.output_tokens) == (
        200,
        800,
        10,
    )
    assert reply.cost_usd == pytest.approx((200 * 0.25 + 800 * 0.025 + 10 * 2.0) / 1e6)


def test_compatible_server_gets_the_portable_request(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """Other servers get max_tokens and no prompt_cache_key; api.openai.com gets both newer fields."""
    server.enqueue(turn("", [("bash", {"command": "ls"})]))
    make(server, fast).query("s", [Message.user("t")], tools)
    body = server.requests[0].json
    assert body["max_tokens"] == fast.max_tokens and "prompt_cache_key" not in body
    official = OpenAIModel("gpt-test", api_key="k", config=fast, cache_key="task-1")
    _OPEN.append(official)
    request = official.request("s", [Message.user("t")], tools)
    assert request["prompt_cache_key"] == "task-1" and request["max_completion_tokens"] == fast.max_tokens
    azure = OpenAIModel("gpt-test", api_key="k", config=fast, base_url="https://x.openai.azure.com/openai/v1")
    _OPEN.append(azure)
    assert "max_completion_tokens" in azure.request("s", [], tools)


def test_local_server_needs_no_key(server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]) -> None:
    """With a local base URL and no OPENAI_API_KEY the model still works (vLLM, Ollama, llama.cpp)."""
    config = fast.model_copy(update={"openai_base_url": server.openai_base_url})
    model = get_model("openai:qwen3-coder", config=config, cache_key="t1")
    assert isinstance(model, OpenAIModel)
    _OPEN.append(model)
    server.enqueue(turn("", [("bash", {"command": "ls"})]))
    assert model.query("s", [Message.user("t")], tools).message.tool_calls[0].arguments == {"command": "ls"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            completion(
                {"role": "assistant", "content": None, "tool_calls": [call("bash", '{"command": "ls"')]}
            ),
            "not valid JSON",
        ),
        (
            completion({"role": "assistant", "content": None, "tool_calls": [call("bash", '["ls"]')]}),
            "not a JSON object",
        ),
        (
            completion({"role": "assistant", "content": None, "tool_calls": [call("shell", "{}")]}),
            "unknown tool 'shell'",
        ),
        (
            completion({"role": "assistant", "content": None, "tool_calls": [call("", "{}")]}),
            "no function name",
        ),
        (completion({"role": "assistant", "content": "I would run ls."}, "stop"), "called no tool"),
        (
            completion({"role": "assistant", "tool_calls": [call("bash", '{"command": "ls"}')]}, "length"),
            "output token limit",
        ),
        (completion(None, "stop"), "no choices"),  # type: ignore[arg-type]
        ({"id": "x", "object": "chat.completion", "choices": []}, "no choices"),
    ],
)
def test_junk_replies_are_format_errors(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], body: dict[str, Any], words: str
) -> None:
    """Broken JSON, non-object arguments, unknown tools, no tool calls and no choices are format errors."""
    server.enqueue(raw_json(body))
    reply = make(server, fast).query("s", [Message.user("t")], tools)
    assert words in (reply.format_error or "")
    assert reply.message.tool_calls == []


def test_content_parts_and_missing_ids(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """Text sent as content parts is joined, and tool calls without ids get unique ones."""
    calls = [{"type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}] * 2
    content = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    server.enqueue(raw_json(completion({"role": "assistant", "content": content, "tool_calls": calls})))
    reply = make(server, fast).query("s", [Message.user("t")], tools)
    assert reply.message.text == "ab" and reply.format_error is None
    assert len({call.id for call in reply.message.tool_calls}) == 2


@pytest.mark.parametrize(("arguments", "parsed"), [("", {}), ({"command": "ls"}, {"command": "ls"})])
def test_lenient_arguments_are_accepted(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], arguments: Any, parsed: dict[str, Any]
) -> None:
    """Empty argument strings and servers that send an object instead of a string still work."""
    server.enqueue(
        raw_json(completion({"role": "assistant", "content": None, "tool_calls": [call("bash", arguments)]}))
    )
    reply = make(server, fast).query("s", [Message.user("t")], tools)
    assert reply.format_error is None and reply.message.tool_calls[0].arguments == parsed
    assert reply.usage.total == 0 and reply.cost_usd is None


@pytest.mark.parametrize(
    ("reply", "error_class", "words"),
    [
        (error(401, "Incorrect API key provided"), ModelAuthError, "OPENAI_API_KEY"),
        (
            error(429, "You exceeded your quota", code="insufficient_quota", retry_after_ms=5),
            ModelAuthError,
            "quota",
        ),
        (error(400, "Invalid schema for function 'bash'"), ModelFatalError, "Invalid schema"),
        (error(404, "The model `gpt-nope` does not exist"), ModelNotFoundError, "not found"),
        (context_too_long(), ContextExceededError, "maximum context length"),
        (
            error(400, "the request exceeds the available context size, try increasing it"),
            ContextExceededError,
            "context size",
        ),
        (raw(b"<html>bad gateway</html>"), ModelUnavailableError, "invalid JSON"),
    ],
)
def test_errors_are_translated(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], reply, error_class, words
) -> None:
    """Each failure becomes its runner error; context errors are recognised by code or by wording."""
    server.enqueue(reply, reply, reply)
    with pytest.raises(error_class, match=words) as caught:
        make(server, fast).query("s", [Message.user("t")], tools)
    assert type(caught.value) is error_class


@pytest.mark.parametrize(
    "reply", [error(429, retry_after_ms=5), error(529, retry_after_ms=5), error(503, retry_after=0.01)]
)
def test_transient_errors_are_retried_then_unavailable(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], reply
) -> None:
    """Rate limits, overload and 5xx are retried max_retries times, then ModelUnavailableError, quickly."""
    server.enqueue(reply, reply, reply)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match=f"HTTP {reply.status}"):
        make(server, fast).query("s", [Message.user("t")], tools)
    assert len(server.requests) == fast.max_retries + 1
    assert time.monotonic() - started < 2


def test_hang_times_out_as_unavailable(server: FakeLLMServer, tools: list[ToolSpec]) -> None:
    """A server that never answers ends in ModelUnavailableError after the timeout."""
    server.enqueue(hang(10))
    with pytest.raises(ModelUnavailableError, match="timed out"):
        make(server, ModelsConfig(timeout_s=0.3, max_retries=0)).query("s", [Message.user("t")], tools)
