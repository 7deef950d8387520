"""`models check`: one cheap request per model spec, with a verdict on each thing a run needs.

A check sends one short prompt with a single `ping` tool the model is told to call: the reply shows the
server is reachable, the key accepted, the model name known and tool calls supported. A spec whose key is
unset gets no request: its record names the variable to set. When the reply calls no tool, a second request
without the tool tells a server that drops `tools` (the same prompt tokens with and without them, as
llama-cpp-python does with some chat formats) from a model that ignores them. A local server's context
window is read from what it says about itself (`server_info`), and set against `models.max_tokens`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from agent_runner.config.runner import ModelsConfig, RunnerConfig
from agent_runner.core.errors import (
    ContextExceededError,
    ModelAuthError,
    ModelError,
    ModelNotFoundError,
    ModelSpecError,
    ModelUnavailableError,
)
from agent_runner.core.messages import Message, ModelTurn, ToolSpec, Usage
from agent_runner.models import get_model
from agent_runner.models.base import clip, host_of
from agent_runner.models.keys import OPENAI_HOST, key_env
from agent_runner.models.server_info import context_window

PING = ToolSpec(
    name="ping",
    description="Answer the connectivity check.",
    parameters={"type": "object", "properties": {"ok": {"type": "boolean"}}},
)
SYSTEM = "You are a connectivity check. Call the `ping` tool with ok=true and write nothing else."
PROMPT = "Call ping now."
CHECK_MAX_TOKENS = 256  # ModelsConfig's least: the reply is one short tool call
PROBE_MAX_TOKENS = 16  # the request without tools is sent for its prompt token count only
TOOLS_IGNORED = "the server ignored the tools"
TOOL_AS_TEXT = "the reply wrote the tool call as text instead of making one"
# A call written out as text: JSON naming the tool, `ping(...)`, `functions.ping`, a <tool_call> tag.
_CALL_AS_TEXT = re.compile(r'"name"\s*:\s*"ping"|\bping\s*\(|functions\.ping|<tool_call>', re.IGNORECASE)
FORMAT_HINT = "check the server's chat format or tool-call parser (docs/models.md: Servers tried)"


class Status(StrEnum):
    """The outcome of one part of a check."""

    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"  # not reached: an earlier part failed


class Verdict(StrEnum):
    """Whether runs can use the model."""

    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class ModelCheck:
    """What one check found out about one model spec."""

    spec: str
    reachable: Status = Status.UNKNOWN
    key: Status = Status.UNKNOWN
    model: Status = Status.UNKNOWN
    tool_calls: Status = Status.UNKNOWN
    context: int | None = None  # the context window in tokens, when the server says
    verdict: Verdict = Verdict.FAILED
    message: str = ""
    prompt_tokens: int | None = None  # of the check's request, with the ping tool (None: not reported)
    prompt_tokens_without_tools: int | None = None  # of the second request, sent when no tool was called


def check_models(
    specs: Iterable[str], config: RunnerConfig, environ: Mapping[str, str] | None = None
) -> list[ModelCheck]:
    """Check each distinct spec in order."""
    env = os.environ if environ is None else environ
    return [check_model(spec, config, env) for spec in dict.fromkeys(specs)]


def check_model(spec: str, config: RunnerConfig, environ: Mapping[str, str]) -> ModelCheck:
    """Check one spec: no request when its key is unset; else one request, its outcome judged."""
    var = key_env(spec, config, environ)
    if var is not None and not (environ.get(var) or "").strip():
        return ModelCheck(spec, key=Status.FAILED, message=f"no key: set {var}")
    settings = config.models.model_copy(update={"max_tokens": CHECK_MAX_TOKENS})
    try:
        turn = _ask(spec, settings, environ, [PING])
    except ModelSpecError as exc:
        return ModelCheck(spec, message=str(exc))
    except ModelError as exc:
        return _failed(spec, exc)
    checked = _judge(spec, turn)
    if checked.tool_calls is Status.FAILED and not checked.message.startswith(TOOL_AS_TEXT):
        # Only the prompt's size matters now: a few output tokens keep a slow CPU server quick.
        checked = _diagnose(checked, settings.model_copy(update={"max_tokens": PROBE_MAX_TOKENS}), environ)
    return _with_context(checked, config, environ)


def _ask(spec: str, settings: ModelsConfig, environ: Mapping[str, str], tools: list[ToolSpec]) -> ModelTurn:
    """Send the check's prompt with `tools` through a model built for this one request."""
    model = get_model(spec, config=settings, secrets=dict(environ))
    try:
        return model.query(SYSTEM, [Message.user(PROMPT)], tools)
    finally:
        close = getattr(model, "close", None)
        if callable(close):
            close()


def _judge(spec: str, turn: ModelTurn) -> ModelCheck:
    reached = ModelCheck(
        spec, reachable=Status.OK, key=Status.OK, model=Status.OK, prompt_tokens=_prompt_tokens(turn.usage)
    )
    if turn.format_error is None and any(c.name == PING.name for c in turn.message.tool_calls):
        return replace(reached, tool_calls=Status.OK, verdict=Verdict.OK, message="ready")
    failed = replace(reached, tool_calls=Status.FAILED)
    if _CALL_AS_TEXT.search(turn.message.text):
        return replace(failed, message=f"{TOOL_AS_TEXT} ({clip(turn.message.text, 80)!r}); {FORMAT_HINT}")
    return replace(
        failed, message=f"tool calls unsupported: {turn.format_error or 'the reply called no tool'}"
    )


def _diagnose(checked: ModelCheck, settings: ModelsConfig, environ: Mapping[str, str]) -> ModelCheck:
    """Send the prompt again without the tool: identical prompt tokens mean the server dropped `tools`."""
    try:
        bare = _ask(checked.spec, settings, environ, [])
    except ModelError:
        return checked  # the first answer stands; a second one is only a diagnosis
    with_tools, without = checked.prompt_tokens, _prompt_tokens(bare.usage)
    checked = replace(checked, prompt_tokens_without_tools=without)
    if not with_tools or not without:
        return checked  # the server reports no usage: nothing to compare
    if with_tools == without:
        tokens = f"{with_tools} prompt tokens with the tools and without them"
        return replace(checked, message=f"{TOOLS_IGNORED} ({tokens}); {FORMAT_HINT}")
    tokens = f"{with_tools} prompt tokens with the tools, {without} without"
    return replace(checked, message=f"{checked.message} (the server passed the tools: {tokens})")


def _prompt_tokens(usage: Usage) -> int | None:
    total = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    return total or None


def _with_context(checked: ModelCheck, config: RunnerConfig, environ: Mapping[str, str]) -> ModelCheck:
    """Add the context window a local OpenAI-compatible server reports; fail when max_tokens cannot fit."""
    provider, _, name = checked.spec.partition(":")
    url = config.models.openai_base_url or environ.get("OPENAI_BASE_URL")
    if provider != "openai" or not url or host_of(url) == OPENAI_HOST or checked.reachable is not Status.OK:
        return checked
    window = context_window(url, name, api_key=(environ.get("OPENAI_API_KEY") or "").strip() or None)
    if window is None:
        return checked  # llama-cpp-python, Ollama and LM Studio do not say on /v1: the column reads "-"
    checked = replace(checked, context=window)
    max_tokens, elide_at = config.models.max_tokens, config.models.context_tokens
    if max_tokens >= window:
        return replace(checked, verdict=Verdict.FAILED, message=_no_room(max_tokens, window))
    if elide_at + max_tokens > window:
        note = f"models.context_tokens ({elide_at}) + max_tokens pass the window: set it to at most"
        return replace(checked, message=f"{checked.message}; {note} {window - max_tokens}")
    return checked


def _no_room(max_tokens: int, window: int) -> str:
    return (
        f"models.max_tokens ({max_tokens}) leaves no room for a prompt in the server's context window "
        f"({window} tokens): lower models.max_tokens or start the server with a larger context"
    )


def _failed(spec: str, exc: ModelError) -> ModelCheck:
    """Return the record of a request the adapter turned into a runner error."""
    if isinstance(exc, ModelAuthError):
        reached = "refused the key" in str(exc)
        status = Status.OK if reached else Status.UNKNOWN
        return ModelCheck(spec, reachable=status, key=Status.FAILED, message=f"key refused: {exc}")
    if isinstance(exc, ModelNotFoundError):
        return ModelCheck(
            spec, reachable=Status.OK, key=Status.OK, model=Status.FAILED, message=f"unknown model: {exc}"
        )
    if isinstance(exc, ModelUnavailableError):
        return ModelCheck(spec, reachable=Status.FAILED, message=f"unreachable: {exc}")
    if isinstance(exc, ContextExceededError):
        return ModelCheck(spec, reachable=Status.OK, key=Status.OK, model=Status.OK, message=str(exc))
    return ModelCheck(spec, reachable=Status.OK, message=f"request refused: {exc}")


def is_ok(checks: Iterable[ModelCheck]) -> bool:
    """Return whether every check passed."""
    return all(c.verdict is Verdict.OK for c in checks)
