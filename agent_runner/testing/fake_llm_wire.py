"""Replies the fake LLM server can serve, and how each is rendered in the Anthropic or OpenAI wire format."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Protocol = Literal["anthropic", "openai"]
Action = Literal["respond", "hang", "reset"]

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
CONTEXT_MESSAGES = {
    "anthropic": "prompt is too long: 210000 tokens > 200000 maximum",
    "openai": "This model's maximum context length is 128000 tokens. However, you requested 130000 tokens.",
}


@dataclass
class Reply:
    """One scripted answer: a model turn, an error status, raw bytes, a hang or a connection reset."""

    status: int = 200
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    message: str = ""
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    raw_json: Any = None
    action: Action = "respond"
    delay_s: float = 0.0
    is_context: bool = False
    thinking: str = ""

    def render(self, protocol: Protocol, request_body: bytes, n_reply: int) -> bytes:
        """Return the response body for `protocol`."""
        if self.raw is not None:
            return self.raw
        if self.raw_json is not None:
            return json.dumps(self.raw_json).encode()
        if self.status >= 400:
            return json.dumps(self._error(protocol)).encode()
        usage = self.usage or {"input": math.ceil(len(request_body) / 4), "output": 10}
        body = (
            _anthropic_turn(self, usage, n_reply)
            if protocol == "anthropic"
            else _openai_turn(self, usage, n_reply)
        )
        return json.dumps(body).encode()

    def _error(self, protocol: Protocol) -> dict[str, Any]:
        message = (
            CONTEXT_MESSAGES[protocol] if self.is_context else self.message or f"fake error {self.status}"
        )
        if protocol == "anthropic":
            kind = _ANTHROPIC_ERROR_TYPES.get(self.status, "api_error")
            details = {"details": {"error_code": self.code}} if self.code else {}
            return {"type": "error", "error": {"type": kind, "message": message, **details}}
        return {
            "error": {"message": message, "type": "invalid_request_error", "param": None, "code": self.code}
        }


def turn(
    text: str = "",
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None,
    *,
    usage: dict[str, int] | None = None,
    thinking: str = "",
    delay_s: float = 0.0,
) -> Reply:
    """Return a model turn, answered after `delay_s`; usage keys input, output, cache_read, cache_write
    (default: from request size)."""
    return Reply(
        text=text, tool_calls=list(tool_calls or []), usage=usage, thinking=thinking, delay_s=delay_s
    )


def error(
    status: int,
    message: str = "",
    *,
    retry_after: float | None = None,
    retry_after_ms: int | None = None,
    code: str | None = None,
) -> Reply:
    """Return an error status in the protocol's error format, with optional retry hints."""
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    return Reply(status=status, message=message, code=code, headers=headers)


def context_too_long() -> Reply:
    """Return the 400 a server sends when the prompt exceeds the context window."""
    return Reply(status=400, code="context_length_exceeded", is_context=True)


def raw(body: bytes, *, status: int = 200, content_type: str = "application/json") -> Reply:
    """Return a reply whose body is sent as-is (e.g. invalid JSON)."""
    return Reply(status=status, raw=body, headers={"content-type": content_type})


def raw_json(body: Any, *, status: int = 200) -> Reply:
    """Return a reply with a hand-written JSON body (e.g. junk from an OpenAI-compatible server)."""
    return Reply(status=status, raw_json=body)


def hang(seconds: float = 30.0) -> Reply:
    """Return a reply that answers only after `seconds` (past the client's timeout)."""
    return Reply(action="hang", delay_s=seconds)


def reset() -> Reply:
    """Return a reply that closes the connection without answering."""
    return Reply(action="reset")


LLAMA_CPP_NULL_CONTENT = "ChatCompletionRequestAssistantMessage.content: Input should be a valid string"


def llama_cpp_check(body: Any) -> Reply | None:
    """Answer like llama-cpp-python's server: an assistant message whose content is null gets an HTTP 500
    naming the validation error (as llama-cpp-python 0.3 does); None lets the request through."""
    for message in body.get("messages", []) if isinstance(body, dict) else []:
        if message.get("role") == "assistant" and message.get("content", "") is None:
            return Reply(status=500, message=LLAMA_CPP_NULL_CONTENT)
    return None


def _anthropic_turn(reply: Reply, usage: dict[str, int], n_reply: int) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.thinking:
        content.append({"type": "thinking", "thinking": reply.thinking, "signature": f"sig-{n_reply}"})
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    content += [
        {"type": "tool_use", "id": f"toolu_{n_reply:04d}_{i}", "name": name, "input": args}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
    return {
        "id": f"msg_{n_reply:04d}",
        "type": "message",
        "role": "assistant",
        "model": "fake",
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": usage.get("input", 0),
            "output_tokens": usage.get("output", 0),
            "cache_read_input_tokens": usage.get("cache_read", 0),
            "cache_creation_input_tokens": usage.get("cache_write", 0),
        },
    }


def _openai_turn(reply: Reply, usage: dict[str, int], n_reply: int) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{n_reply:04d}_{i}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for i, (name, args) in enumerate(reply.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if calls:
        message["tool_calls"] = calls
    cached = usage.get("cache_read", 0)
    prompt = usage.get("input", 0) + cached
    return {
        "id": f"chatcmpl-{n_reply:04d}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": usage.get("output", 0),
            "total_tokens": prompt + usage.get("output", 0),
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }
