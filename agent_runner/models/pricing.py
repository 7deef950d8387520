"""A dated price table for Anthropic and OpenAI models, and the cost of a call's usage."""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent_runner.core.messages import Usage

PRICES_AS_OF = "2026-11-28"
PRICES_SOURCE = (
    "platform.claude.com/docs/en/about-claude/pricing and the model pages; openai.com/api/pricing "
    "(standard tier, as quoted in public price trackers). Verify before budgeting: prices change."
)


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens; `long` prices a whole call whose prompt exceeds `long_above`."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    long_above: int | None = None
    long: Price | None = None


def _anthropic(
    input_: float,
    output: float,
    *,
    read: float = 0.1,
    long_above: int | None = None,
    long: Price | None = None,
) -> Price:
    # Anthropic: 5-minute cache writes cost 1.25x input; reads 0.1x (0.05x or 0.025x on some newer models).
    return Price(input_, output, round(input_ * read, 4), round(input_ * 1.25, 4), long_above, long)


def _openai(input_: float, output: float, cached: float) -> Price:
    # OpenAI bills no cache writes on Chat Completions: the first call pays the normal input price.
    return Price(input_, output, cached, input_)


_SONNET_4_LONG = _anthropic(6.0, 22.5)  # Sonnet 4 and 4.5 past 200k prompt tokens

PRICES: dict[str, Price] = {
    "claude-fable-5-1": _anthropic(10.0, 50.0, read=0.025),
    "claude-mythos-5-1": _anthropic(10.0, 50.0, read=0.025),
    "claude-fable-5": _anthropic(10.0, 50.0),
    "claude-mythos-5": _anthropic(10.0, 50.0),
    "claude-opus-5-5": _anthropic(4.0, 20.0, read=0.05),
    "claude-opus-5": _anthropic(5.0, 25.0),
    "claude-opus-4-8": _anthropic(5.0, 25.0),
    "claude-opus-4-7": _anthropic(5.0, 25.0),
    "claude-opus-4-6": _anthropic(5.0, 25.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-opus-4": _anthropic(15.0, 75.0),
    "claude-sonnet-5-5": _anthropic(2.0, 10.0, read=0.05),  # cache reads cut to 0.05x on 2026-10-07
    "claude-sonnet-5": _anthropic(2.0, 10.0),
    "claude-sonnet-4-6": _anthropic(3.0, 15.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0, long_above=200_000, long=_SONNET_4_LONG),
    "claude-sonnet-4": _anthropic(3.0, 15.0, long_above=200_000, long=_SONNET_4_LONG),
    "claude-haiku-5-5": _anthropic(0.10, 0.50, long_above=100_000, long=_anthropic(0.50, 2.50)),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "gpt-5.6-sol": _openai(5.0, 30.0, 0.50),
    "gpt-5.6-terra": _openai(2.50, 15.0, 0.25),
    "gpt-5.6-luna": _openai(1.0, 6.0, 0.10),
    "gpt-5.5": _openai(5.0, 30.0, 0.50),
    "gpt-5.4": _openai(2.50, 15.0, 0.25),
    "gpt-5.4-mini": _openai(0.75, 4.50, 0.075),
    "gpt-5.4-nano": _openai(0.20, 1.25, 0.02),
    "gpt-5.2": _openai(1.75, 14.0, 0.175),
    "gpt-5.1": _openai(1.25, 10.0, 0.125),
    "gpt-5.1-codex": _openai(1.25, 10.0, 0.125),
    "gpt-5": _openai(1.25, 10.0, 0.125),
    "gpt-5-codex": _openai(1.25, 10.0, 0.125),
    "gpt-5-mini": _openai(0.25, 2.0, 0.025),
    "gpt-5-nano": _openai(0.05, 0.40, 0.005),
    "gpt-4.1": _openai(2.0, 8.0, 0.50),
    "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
    "gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
    "gpt-4o": _openai(2.50, 10.0, 1.25),
    "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
    "o1": _openai(15.0, 60.0, 7.50),
    "o3": _openai(2.0, 8.0, 0.50),
    "o3-mini": _openai(1.10, 4.40, 0.55),
    "o4-mini": _openai(1.10, 4.40, 0.275),
}

# A dated snapshot id is the alias plus a date: claude-sonnet-4-5-20250929, gpt-4o-2024-08-06.
_SNAPSHOT_SUFFIX = re.compile(r"^(-\d{8}|-\d{4}-\d{2}-\d{2}|-latest)?$")


def price_for(model_name: str) -> Price | None:
    """Return the price of a model name or dated snapshot id (None when the table does not know it)."""
    name = model_name.strip().lower()
    for alias in sorted(PRICES, key=len, reverse=True):
        if name.startswith(alias) and _SNAPSHOT_SUFFIX.match(name[len(alias) :]):
            return PRICES[alias]
    return None


def cost(model_name: str, usage: Usage) -> float | None:
    """Return the US dollar cost of `usage` on `model_name`, or None for an unknown model."""
    price = price_for(model_name)
    if price is None:
        return None
    if price.long is not None and price.long_above is not None and usage.total_input > price.long_above:
        price = price.long
    total = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    )
    return total / 1_000_000


def max_cost(model_name: str, *, input_tokens: int, output_tokens: int) -> float | None:
    """Return the most a call of `input_tokens` prompt tokens and up to `output_tokens` can cost (None: an
    unknown model): every prompt token at the dearest input rate (a cache write costs more than a plain
    read), the long-context price past its threshold."""
    price = price_for(model_name)
    if price is None:
        return None
    if price.long is not None and price.long_above is not None and input_tokens > price.long_above:
        price = price.long
    dearest_input = max(price.input, price.cache_write, price.cache_read)
    return (input_tokens * dearest_input + output_tokens * price.output) / 1_000_000
