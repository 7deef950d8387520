"""The provider-neutral transcript: messages, tool calls, tool results and token usage."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class ToolSpec(BaseModel):
    """A tool as the model sees it: name, description and JSON schema of its arguments."""

    model_config = ConfigDict(frozen=True)
    name: str
    description: str
    parameters: dict[str, Any]


class ToolCall(BaseModel):
    """One tool call the model asked for."""

    model_config = ConfigDict(frozen=True)
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ToolResult(BaseModel):
    """The answer to one tool call."""

    model_config = ConfigDict(frozen=True)
    call_id: str
    content: str
    is_error: bool = False


class Message(BaseModel):
    """One turn: user text and tool results, or assistant text and tool calls."""

    model_config = ConfigDict(frozen=True)
    role: Role
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_results: list[ToolResult] = Field(default_factory=list)

    @classmethod
    def user(cls, text: str) -> Message:
        """Return a user message with plain text."""
        return cls(role=Role.USER, text=text)


class Usage(BaseModel):
    """Token counts of one or more calls; input excludes cached tokens."""

    model_config = ConfigDict(frozen=True)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )

    @property
    def total_input(self) -> int:
        """All prompt tokens, cached or not."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total(self) -> int:
        """All tokens in and out."""
        return self.total_input + self.output_tokens


class StopReason(StrEnum):
    END_TURN = "end_turn"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"
    OTHER = "other"


class ModelTurn(BaseModel):
    """What one model call returned: the assistant message, its usage and cost."""

    model_config = ConfigDict(frozen=True)
    message: Message
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    stop_reason: StopReason = StopReason.END_TURN
    format_error: str | None = Field(
        default=None, description="Set when the reply broke the tool protocol (bad JSON, unknown tool)."
    )
