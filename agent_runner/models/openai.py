"""OpenAI and OpenAI-compatible servers through Chat Completions with native tool calls."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import openai

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
    find_key,
    host_of,
    is_context_error,
    is_refusal,
    refusal_message,
    require_key,
)
from agent_runner.models.deadline import CallDeadline, DeadlineError
from agent_runner.models.ratelimit import RateWatch

if TYPE_CHECKING:  # the SDK's HTTP client (openai's own dependency): named only in the hooks' types
    import httpx2

KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_HOST = "api.openai.com"
AZURE_HOST_SUFFIX = ".openai.azure.com"
NO_KEY = "no-key"  # local servers (vLLM, Ollama, llama.cpp) usually accept any key
_STOP_REASONS = {
    "stop": StopReason.END_TURN,
    "tool_calls": StopReason.TOOL_USE,
    "length": StopReason.MAX_TOKENS,
}


class OpenAIModel:
    """A chat model behind OpenAI's API or any server that speaks Chat Completions with tools."""

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        config: ModelsConfig | None = None,
        base_url: str | None = None,
        cache_key: str | None = None,
    ) -> None:
        self.name = name
        self.spec = f"openai:{name}"
        self.config = config or ModelsConfig()
        self.cache_key = cache_key
        # OpenAI's own API gets its newer fields; other servers the portable subset (some reject unknowns).
        host = host_of(base_url)
        self.is_openai = host in ("", OPENAI_HOST)
        self.is_azure = host.endswith(AZURE_HOST_SUFFIX)
        self._deadline = CallDeadline(self.spec)
        self._rates = RateWatch("openai", api_key)
        hooks = {"request": [self._cap_try], "response": [self._see_rates, self._check_wait]}
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=self.config.timeout_s,
            max_retries=self.config.max_retries,
            http_client=openai.DefaultHttpx2Client(event_hooks=hooks),
        )

    @classmethod
    def from_spec(
        cls,
        name: str,
        *,
        config: ModelsConfig,
        cache_key: str | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> OpenAIModel:
        """Build the model for `openai:<name>`; a key is required only for api.openai.com."""
        url = base_url(config.openai_base_url, BASE_URL_ENV)
        if host_of(url) in ("", OPENAI_HOST):
            key = require_key(KEY_ENV, secrets, spec=f"openai:{name}")
        else:
            key = find_key(KEY_ENV, secrets) or NO_KEY
        return cls(name, api_key=key, config=config, base_url=url, cache_key=cache_key)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def set_deadline(self, at: float | None) -> None:
        """Cut every later call, retries included, off at `at` (time.monotonic())."""
        self._deadline.at = at

    def _cap_try(self, request: httpx2.Request) -> None:
        """Give each try, first or retried, at most the time left (the SDK retries inside one call)."""
        seconds = self._deadline.timeout(self.config.timeout_s)
        request.extensions["timeout"] = dict.fromkeys(("connect", "read", "write", "pool"), seconds)

    def _see_rates(self, response: httpx2.Response) -> None:
        self._rates.seen(response.status_code, response.headers)

    def _check_wait(self, response: httpx2.Response) -> None:
        try:
            self._deadline.check_wait(response.status_code, response.headers)
        except DeadlineError:
            response.close()  # the SDK never sees this response: free its connection
            raise

    def max_call_cost(self, input_tokens: int) -> float | None:
        """Return the most a call with this prompt size can cost (max_tokens of output; None: unpriced)."""
        return pricing.max_cost(self.name, input_tokens=input_tokens, output_tokens=self.config.max_tokens)

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        """Send the transcript and return the next assistant turn (bad tool calls set format_error)."""
        try:
            timeout = self._deadline.timeout(self.config.timeout_s)
            reply = self._client.chat.completions.create(
                **self.request(system, messages, tools), timeout=timeout
            )
        except openai.OpenAIError as exc:
            raise translate_error(exc, self.spec) from exc
        except json.JSONDecodeError as exc:
            raise ModelUnavailableError(f"{self.spec}: the server answered with invalid JSON") from exc
        return self._turn(reply, tools)

    def request(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> dict[str, Any]:
        """Return the keyword arguments of one Chat Completions call."""
        request: dict[str, Any] = {"model": self.name, "messages": convert_messages(system, messages)}
        if tools:
            request["tools"] = convert_tools(tools)
            # OpenAI's and vLLM's default when tools are sent, but llama-cpp-python's tool-calling chat
            # formats (chatml-function-calling, functionary) drop the tools without it.
            request["tool_choice"] = "auto"
        # Newer OpenAI models refuse max_tokens; many compatible servers know only max_tokens.
        tokens_field = "max_completion_tokens" if self.is_openai or self.is_azure else "max_tokens"
        request[tokens_field] = self.config.max_tokens
        if self.is_openai and self.cache_key:
            request["prompt_cache_key"] = self.cache_key
        return request

    def _turn(self, reply: Any, tools: Sequence[ToolSpec]) -> ModelTurn:
        usage = convert_usage(getattr(reply, "usage", None))
        cost = pricing.cost(self.name, usage)
        choices = getattr(reply, "choices", None) or []
        if not choices or choices[0].message is None:
            no_choice = "the server returned no choices"
            return ModelTurn(message=_assistant(""), usage=usage, cost_usd=cost, format_error=no_choice)
        choice = choices[0]
        text = _text(choice.message.content)
        stop = _STOP_REASONS.get(choice.finish_reason or "", StopReason.OTHER)
        calls, problem = parse_tool_calls(choice.message.tool_calls or [])
        problem = problem or check_tool_calls(calls, tools, is_truncated=stop is StopReason.MAX_TOKENS)
        return ModelTurn(
            message=_assistant(text, [] if problem else calls),
            usage=usage,
            cost_usd=cost,
            stop_reason=stop,
            format_error=problem,
        )


def _text(content: Any) -> str:
    """Return reply text; some servers send a list of content parts instead of a string."""
    if isinstance(content, list):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return content if isinstance(content, str) else ""


def _assistant(text: str, calls: list[ToolCall] | None = None) -> Message:
    return Message(role=Role.ASSISTANT, text=text, tool_calls=calls or [])


def parse_tool_calls(raw_calls: Sequence[Any]) -> tuple[list[ToolCall], str | None]:
    """Return the tool calls of a reply, or a format-error message for the first broken one."""
    calls: list[ToolCall] = []
    for index, raw in enumerate(raw_calls):
        function = getattr(raw, "function", None)
        name = getattr(function, "name", None)
        if not name:
            return [], f"tool call {index} has no function name"
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            raw_text = arguments
            try:
                arguments = json.loads(raw_text) if raw_text.strip() else {}
            except json.JSONDecodeError as exc:
                return [], f"the arguments of {name!r} are not valid JSON ({exc.msg}): {clip(raw_text)}"
        if not isinstance(arguments, dict):
            return [], f"the arguments of {name!r} are not a JSON object: {clip(repr(arguments))}"
        call_id = getattr(raw, "id", None) or f"call_{uuid.uuid4().hex[:12]}"  # some servers send no id
        calls.append(ToolCall(id=call_id, name=name, arguments=arguments))
    return calls, None


def convert_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Return Chat Completions function tools, in the given order."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in tools
    ]


def convert_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Return Chat Completions messages: system first, one `tool` message per tool result."""
    wire: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        if message.role is Role.ASSISTANT:
            wire.append(_assistant_wire(message))
            continue
        wire.extend(
            {"role": "tool", "tool_call_id": result.call_id, "content": result.content or "(no output)"}
            for result in message.tool_results
        )
        if message.text:
            wire.append({"role": "user", "content": message.text})
    return wire


def _assistant_wire(message: Message) -> dict[str, Any]:
    # "" and not null when a turn has only tool calls: llama-cpp-python's server answers null with an HTTP 500
    # (`content: Input should be a valid string`); OpenAI, vLLM and Ollama take "".
    entry: dict[str, Any] = {"role": "assistant", "content": message.text}
    if message.tool_calls:
        entry["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
            }
            for call in message.tool_calls
        ]
    return entry


def convert_usage(usage: Any) -> Usage:
    """Map OpenAI usage (prompt_tokens includes cached tokens) to Usage (input excludes them)."""
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
    prompt = getattr(usage, "prompt_tokens", None) or 0
    return Usage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=getattr(usage, "completion_tokens", None) or 0,
        cache_read_tokens=cached,
    )


def translate_error(exc: openai.OpenAIError, spec: str) -> ModelError:
    """Return the runner error for an SDK error raised after the SDK's own retries."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelUnavailableError(
            f"{spec}: the call timed out after retries (raise models.timeout_s for a slow server)"
        )
    if isinstance(exc, openai.APIConnectionError):
        return ModelUnavailableError(
            f"{spec}: cannot reach the server ({exc}); check the network or OPENAI_BASE_URL"
        )
    if not isinstance(exc, openai.APIStatusError):
        return ModelUnavailableError(f"{spec}: unusable reply from the server ({clip(str(exc))})")
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = clip(str(body.get("message") or exc.message))
    if status in (401, 402, 403) or exc.code == "insufficient_quota":
        return ModelAuthError(
            f"{spec}: the server refused the key (HTTP {status}: {detail}); check {KEY_ENV}."
        )
    if status == 413 or (
        status == 400 and (exc.code == "context_length_exceeded" or is_context_error(detail))
    ):
        return ContextExceededError(f"{spec}: the transcript no longer fits the context window ({detail}).")
    if status == 404:
        return ModelNotFoundError(
            f"{spec}: model or endpoint not found (HTTP 404: {detail}); check the name and base URL."
        )
    if is_refusal(status, detail):
        return ModelFatalError(refusal_message(spec, status, detail))
    return ModelUnavailableError(
        f"{spec}: HTTP {status} after retries ({detail}): the server is down or busy"
    )
