"""Claude through the Anthropic Messages API: native tool use, prompt caching, translated errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import (
    ContextExceededError,
    ModelAuthError,
    ModelError,
    ModelFatalError,
    ModelNotFoundError,
    ModelUnavailableError,
)
from agent_runner.core.messages import Message, ModelTurn, Role, StopReason, ToolCall, ToolSpec, Usage
from agent_runner.models import pricing
from agent_runner.models.base import (
    base_url,
    check_tool_calls,
    clip,
    is_context_error,
    is_refusal,
    refusal_message,
    require_key,
)
from agent_runner.models.deadline import CallDeadline, retry_after
from agent_runner.models.ratelimit import RateWatch

KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}
MAX_RETRY_WAIT_S = 60.0
MESSAGE_BREAKPOINTS = 2  # plus one on the system prompt: 3 of the 4 the API allows
THINKING_TYPES = ("thinking", "redacted_thinking")
_ACCOUNT_CODES = {"organization_on_hold", "linked_organization_billing_unavailable"}
_STOP_REASONS = {
    "end_turn": StopReason.END_TURN,
    "tool_use": StopReason.TOOL_USE,
    "max_tokens": StopReason.MAX_TOKENS,
    "model_context_window_exceeded": StopReason.MAX_TOKENS,
}


class RetryTooLateError(Exception):
    """The API asked to wait longer than MAX_RETRY_WAIT_S before retrying."""


class _RetryWaitCap(anthropic.Middleware):
    """Stop the SDK from sleeping on a long retry-after: the scheduler re-queues the task instead."""

    def handle(self, request: Any, call_next: Any) -> Any:
        response = call_next(request)
        if response.status_code in (408, 409, 429) or response.status_code >= 500:
            wait = retry_after(response.headers)
            if wait > MAX_RETRY_WAIT_S:
                raise RetryTooLateError(f"HTTP {response.status_code}, retry-after {wait:.0f} s")
        return response


class _DeadlineCap(anthropic.Middleware):
    """Give each try, first or retried, at most the time left; start none once it is up (runs per try)."""

    def __init__(self, deadline: CallDeadline, timeout_s: float) -> None:
        self.deadline, self.timeout_s = deadline, timeout_s

    def handle(self, request: Any, call_next: Any) -> Any:
        request.options.timeout = self.deadline.timeout(self.timeout_s)
        response = call_next(request)
        self.deadline.check_wait(response.status_code, response.headers)
        return response


class _RateReport(anthropic.Middleware):
    """Report each try's rate-limit answer or low quota to the coordinator (models/ratelimit.py)."""

    def __init__(self, watch: RateWatch) -> None:
        self.watch = watch

    def handle(self, request: Any, call_next: Any) -> Any:
        response = call_next(request)
        self.watch.seen(response.status_code, response.headers)
        return response


class AnthropicModel:
    """A Claude model; tools and system stay byte-stable so every step re-reads the cached prefix."""

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        config: ModelsConfig | None = None,
        base_url: str | None = None,
    ) -> None:
        self.name = name
        self.spec = f"anthropic:{name}"
        self.config = config or ModelsConfig()
        # Thinking blocks must go back unchanged with their turn; keyed by the turn's first tool call id.
        self._thinking: dict[str, list[dict[str, Any]]] = {}
        self._deadline = CallDeadline(self.spec)
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url,
            timeout=self.config.timeout_s,
            max_retries=self.config.max_retries,
            middleware=[
                _DeadlineCap(self._deadline, self.config.timeout_s),
                _RetryWaitCap(),
                _RateReport(RateWatch("anthropic", api_key)),
            ],
        )

    @classmethod
    def from_spec(
        cls,
        name: str,
        *,
        config: ModelsConfig,
        cache_key: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> AnthropicModel:
        """Build the model for `anthropic:<name>`; the cache key is unused (Anthropic caches by prefix)."""
        key = require_key(KEY_ENV, secrets, spec=f"anthropic:{name}")
        return cls(
            name, api_key=key, config=config, base_url=base_url(config.anthropic_base_url, BASE_URL_ENV)
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def set_deadline(self, at: float | None) -> None:
        """Cut every later call, retries included, off at `at` (time.monotonic())."""
        self._deadline.at = at

    def max_call_cost(self, input_tokens: int) -> float | None:
        """Return the most a call with this prompt size can cost (max_tokens of output; None: unpriced)."""
        return pricing.max_cost(self.name, input_tokens=input_tokens, output_tokens=self.config.max_tokens)

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        """Send the transcript and return the next assistant turn."""
        request = build_request(system, messages, tools, thinking=self._thinking)
        try:
            timeout = self._deadline.timeout(self.config.timeout_s)
            reply = self._client.messages.create(
                model=self.name, max_tokens=self.config.max_tokens, timeout=timeout, **request
            )
        except anthropic.AnthropicError as exc:
            raise translate_error(exc, self.spec) from exc
        except RetryTooLateError as exc:
            raise ModelUnavailableError(f"{self.spec}: the API asked to wait ({exc})") from exc
        except json.JSONDecodeError as exc:
            raise ModelUnavailableError(f"{self.spec}: the API answered with invalid JSON") from exc
        return self._turn(reply, tools)

    def _turn(self, reply: Any, tools: Sequence[ToolSpec]) -> ModelTurn:
        content = getattr(reply, "content", None) or []
        texts = [block.text for block in content if block.type == "text"]
        calls = [
            ToolCall(id=block.id, name=block.name, arguments=dict(block.input or {}))
            for block in content
            if block.type == "tool_use"
        ]
        usage = convert_usage(getattr(reply, "usage", None))
        stop = _STOP_REASONS.get(getattr(reply, "stop_reason", None) or "", StopReason.OTHER)
        problem = check_tool_calls(calls, tools, is_truncated=stop is StopReason.MAX_TOKENS)
        thinking = [block.to_dict() for block in content if block.type in THINKING_TYPES]
        if thinking and calls and not problem:
            self._thinking[calls[0].id] = thinking
        message = Message(role=Role.ASSISTANT, text="\n".join(texts), tool_calls=[] if problem else calls)
        return ModelTurn(
            message=message,
            usage=usage,
            cost_usd=pricing.cost(self.name, usage),
            stop_reason=stop,
            format_error=problem,
        )


def build_request(
    system: str,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    *,
    thinking: Mapping[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Return the tools, system and messages parameters, with cache breakpoints placed."""
    request: dict[str, Any] = {"messages": convert_messages(messages, thinking=thinking)}
    if system:
        request["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
    if tools:
        request["tools"] = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
            for tool in tools
        ]
    return request


def convert_messages(
    messages: Sequence[Message], *, thinking: Mapping[str, list[dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    """Return Anthropic messages: same-role turns merged, breakpoints on the newest user turns."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        blocks = _blocks(message)
        if message.tool_calls and thinking and message.tool_calls[0].id in thinking:
            blocks = [*thinking[message.tool_calls[0].id], *blocks]
        if wire and wire[-1]["role"] == message.role.value:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": message.role.value, "content": blocks})
    for entry in wire:
        if not entry["content"]:
            entry["content"] = [{"type": "text", "text": "(empty)"}]
    user_turns = [entry for entry in wire if entry["role"] == "user"]
    for entry in user_turns[-MESSAGE_BREAKPOINTS:]:
        entry["content"][-1] = {**entry["content"][-1], "cache_control": EPHEMERAL}
    return wire


def _blocks(message: Message) -> list[dict[str, Any]]:
    # Tool results must come first in a user turn; blank text blocks are rejected by the API.
    blocks: list[dict[str, Any]] = [
        {
            "type": "tool_result",
            "tool_use_id": result.call_id,
            "content": result.content or "(no output)",
            **({"is_error": True} if result.is_error else {}),
        }
        for result in message.tool_results
    ]
    if message.text.strip():
        blocks.append({"type": "text", "text": message.text})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in message.tool_calls
    )
    return blocks


def convert_usage(usage: Any) -> Usage:
    """Map Anthropic usage (input excludes cache reads and writes) to Usage."""
    if usage is None:
        return Usage()
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
    )


def translate_error(exc: anthropic.AnthropicError, spec: str) -> ModelError:
    """Return the runner error for an SDK error raised after the SDK's own retries."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ModelUnavailableError(
            f"{spec}: the call timed out after retries (raise models.timeout_s for a slow server)"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ModelUnavailableError(
            f"{spec}: cannot reach the API ({exc}); check the network or ANTHROPIC_BASE_URL"
        )
    if not isinstance(exc, anthropic.APIStatusError):
        return ModelUnavailableError(f"{spec}: unusable reply from the API ({clip(str(exc))})")
    status, detail = exc.status_code, clip(exc.api_message or exc.message)
    code = exc.error_code or ""
    is_account = exc.type == "billing_error" or code in _ACCOUNT_CODES or "spend_limit" in code
    if status in (401, 402, 403) or is_account:
        return ModelAuthError(
            f"{spec}: the API refused the key or the account (HTTP {status}: {detail}); "
            f"check {KEY_ENV} and the account's billing and spend limits."
        )
    if status == 413 or (status == 400 and is_context_error(detail)):
        return ContextExceededError(f"{spec}: the transcript no longer fits the context window ({detail}).")
    if status == 404:
        return ModelNotFoundError(f"{spec}: model not found (HTTP 404: {detail}); check the model name.")
    if is_refusal(status, detail):
        return ModelFatalError(refusal_message(spec, status, detail))
    return ModelUnavailableError(f"{spec}: HTTP {status} after retries ({detail}): the API is down or busy")
