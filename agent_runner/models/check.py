"""`models check`: one cheap request per model spec, with a verdict on each thing a run needs.

A check sends one short prompt with a single `ping` tool the model is told to call: the reply shows the
server is reachable, the key accepted, the model name known and tool calls supported. A spec whose key is
unset gets no request: its record names the variable to set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from agent_runner.config.runner import RunnerConfig
from agent_runner.core.errors import (
    ContextExceededError,
    ModelAuthError,
    ModelError,
    ModelNotFoundError,
    ModelSpecError,
    ModelUnavailableError,
)
from agent_runner.core.messages import Message, ModelTurn, ToolSpec
from agent_runner.models import get_model
from agent_runner.models.keys import key_env

PING = ToolSpec(
    name="ping",
    description="Answer the connectivity check.",
    parameters={"type": "object", "properties": {"ok": {"type": "boolean"}}},
)
SYSTEM = "You are a connectivity check. Call the `ping` tool with ok=true and write nothing else."
PROMPT = "Call ping now."
CHECK_MAX_TOKENS = 256  # ModelsConfig's least: the reply is one short tool call


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
        model = get_model(spec, config=settings, secrets=dict(environ))
    except ModelSpecError as exc:
        return ModelCheck(spec, message=str(exc))
    except ModelError as exc:
        return _failed(spec, exc)
    try:
        return _judge(spec, model.query(SYSTEM, [Message.user(PROMPT)], [PING]))
    except ModelError as exc:
        return _failed(spec, exc)
    finally:
        close = getattr(model, "close", None)
        if callable(close):
            close()


def _judge(spec: str, turn: ModelTurn) -> ModelCheck:
    reached = ModelCheck(spec, reachable=Status.OK, key=Status.OK, model=Status.OK)
    if turn.format_error is None and any(c.name == PING.name for c in turn.message.tool_calls):
        return replace(reached, tool_calls=Status.OK, verdict=Verdict.OK, message="ready")
    why = turn.format_error or "the reply called no tool"
    return replace(reached, tool_calls=Status.FAILED, message=f"tool calls unsupported: {why}")


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
