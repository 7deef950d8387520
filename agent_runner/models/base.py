"""Helpers shared by the provider adapters: keys, base URLs, context-length detection, reply checks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

from agent_runner.core.errors import ModelAuthError
from agent_runner.core.messages import ToolCall, ToolSpec

# Wording of context-length errors: Anthropic, OpenAI, vLLM, llama.cpp server, LiteLLM proxies.
_CONTEXT_PATTERNS = re.compile(
    r"prompt is too long|context[ _-]length|maximum context|context[ _-]window|context size"
    r"|exceed_context|too many tokens|input is too long|reduce the length",
    re.IGNORECASE,
)
# Request-validation failures (pydantic wording: llama-cpp-python, vLLM); some servers send them as 5xx.
_VALIDATION_PATTERNS = re.compile(
    r"validation error|input should be|field required|extra inputs are not permitted|invalid request"
    r"|expected '\w+' to be",  # llama.cpp's llama-server: "Expected 'content' to be a string or an array"
    re.IGNORECASE,
)
RETRYABLE_STATUSES = (408, 409, 429)  # and every 5xx that is not a validation error


def find_key(env_var: str, secrets: Mapping[str, str] | None) -> str | None:
    """Return the key from the worker's secrets first, then the environment (None when unset or blank)."""
    value = (secrets or {}).get(env_var) or os.environ.get(env_var) or ""
    return value.strip() or None


def require_key(env_var: str, secrets: Mapping[str, str] | None, *, spec: str) -> str:
    """Return the key or raise ModelAuthError naming the variable to set."""
    key = find_key(env_var, secrets)
    if key is None:
        raise ModelAuthError(
            f"{spec} needs an API key: set {env_var} in the environment of the coordinator "
            f"(it is forwarded to workers as a secret), e.g. `export {env_var}=...`."
        )
    return key


def base_url(configured: str | None, env_var: str) -> str | None:
    """Return the configured base URL, else the *_BASE_URL variable, else None (the SDK default)."""
    return configured or os.environ.get(env_var) or None


def host_of(url: str | None) -> str:
    """Return the lower-case host name of a URL ('' for None)."""
    return (urlparse(url).hostname or "").lower() if url else ""


def is_context_error(message: str) -> bool:
    """Return whether an error message says the prompt does not fit the context window."""
    return bool(_CONTEXT_PATTERNS.search(message))


def is_refusal(status: int, detail: str) -> bool:
    """Return whether an HTTP error refuses the request itself (sending it again gets the same answer):
    a 4xx other than 408/409/429, or a 5xx whose message is a request-validation error."""
    if status < 500:
        return status not in RETRYABLE_STATUSES
    return bool(_VALIDATION_PATTERNS.search(detail))


def refusal_message(spec: str, status: int, detail: str) -> str:
    """Return the error of a request the server refuses as invalid (the attempt fails as a model error)."""
    return (
        f"{spec}: the server refuses the request as invalid (HTTP {status}: {detail}); it answered the "
        "same each time it was sent, so this is not an outage: see docs/models.md (local servers)"
    )


def check_tool_calls(
    calls: Sequence[ToolCall], tools: Sequence[ToolSpec], *, is_truncated: bool = False
) -> str | None:
    """Return a format-error message when the turn calls no tool, an unknown one, or was cut off."""
    if calls and is_truncated:
        return "the reply hit the output token limit in the middle of a tool call; make smaller steps"
    known = [tool.name for tool in tools]
    if not calls and known:
        return f"the reply called no tool; call one of: {', '.join(known)} (call `finish` when done)"
    for call in calls:
        if call.name not in known:
            return f"the reply called an unknown tool {call.name!r}; the tools are: {', '.join(known)}"
    return None


def clip(text: str, limit: int = 300) -> str:
    """Return `text` cut to `limit` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."
