"""Context management: elide the oldest tool outputs in batches, so the cached prefix changes rarely.

Eliding a little every step would rewrite the transcript every step and defeat prompt caching. Instead, once
the context passes `context_tokens`, enough old outputs are replaced at once to bring it down to `elide_to` of
that size; the transcript then only grows (and stays cacheable) until the threshold is reached again.
The system prompt and the first (task) message are never touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from agent_runner.core.messages import Message, ToolResult, ToolSpec

ELIDED_PREFIX = "[elided:"
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 16  # generous: role markers, tool-use framing, separators


class ContextConfig(BaseModel):
    """When and how much of the transcript to elide."""

    model_config = ConfigDict(extra="forbid")
    context_tokens: int = Field(
        default=100_000, ge=1, description="Elide old tool outputs past this many tokens."
    )
    elide_to: float = Field(default=0.5, gt=0, lt=1, description="Share of context_tokens to come down to.")
    elide_batch: int = Field(default=5, ge=1, description="Elide at least this many outputs at a time.")
    keep_recent: int = Field(default=2, ge=1, description="The newest turns whose outputs are never elided.")
    elide_min_chars: int = Field(default=200, ge=0, description="Outputs shorter than this are kept.")


def estimate_tokens(system: str, messages: Sequence[Message]) -> int:
    """Return a rough token count of the transcript (characters / 4)."""
    n_chars = len(system)
    for message in messages:
        n_chars += len(message.text) + sum(len(r.content) for r in message.tool_results)
        n_chars += sum(len(c.name) + len(json.dumps(c.arguments, default=str)) for c in message.tool_calls)
    return -(-n_chars // CHARS_PER_TOKEN)


def max_prompt_tokens(system: str, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
    """Return an upper bound on the prompt tokens of this text: a token a UTF-8 byte (byte-level BPE
    tokenizers never make a token of less), plus a few per message for roles and separators."""
    n_bytes = len(system.encode())
    for message in messages:
        n_bytes += len(message.text.encode()) + sum(len(r.content.encode()) for r in message.tool_results)
        calls = message.tool_calls
        n_bytes += sum(len(c.name) + len(json.dumps(c.arguments, default=str).encode()) for c in calls)
    for tool in tools:
        n_bytes += len(tool.name) + len(tool.description.encode()) + len(json.dumps(tool.parameters).encode())
    return n_bytes + MESSAGE_OVERHEAD_TOKENS * (len(messages) + len(tools) + 1)


def placeholder(content: str) -> str:
    """Return the stand-in for an elided output (deterministic, so the new prefix is stable too)."""
    return f"{ELIDED_PREFIX} this output ({len(content)} characters) was removed to save context; rerun it]"


def elide_old_outputs(
    messages: list[Message], config: ContextConfig, *, size: int
) -> tuple[list[Message], int]:
    """Return the transcript with its oldest tool outputs elided down to the target size, and how many."""
    to_free = size - int(config.context_tokens * config.elide_to)
    with_results = [i for i, m in enumerate(messages) if m.tool_results and i > 0]
    candidates = with_results[: max(len(with_results) - config.keep_recent, 0)]
    out, freed, n_elided = list(messages), 0, 0
    for index in candidates:
        if freed >= to_free and n_elided >= config.elide_batch:
            break
        results: list[ToolResult] = []
        for result in out[index].tool_results:
            done = freed >= to_free and n_elided >= config.elide_batch
            if (
                done
                or result.content.startswith(ELIDED_PREFIX)
                or len(result.content) < config.elide_min_chars
            ):
                results.append(result)
                continue
            short = placeholder(result.content)
            freed += (len(result.content) - len(short)) // CHARS_PER_TOKEN
            n_elided += 1
            results.append(result.model_copy(update={"content": short}))
        out[index] = out[index].model_copy(update={"tool_results": results})
    return out, n_elided
