"""The price table: dated snapshot ids, unknown models, cache and long-prompt prices."""

from __future__ import annotations

import pytest

from agent_runner.core.messages import Usage
from agent_runner.models.pricing import PRICES, cost, max_cost, price_for


@pytest.mark.parametrize(
    ("name", "alias"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
        ("gpt-5-mini", "gpt-5-mini"),
        ("GPT-5", "gpt-5"),
    ],
)
def test_dated_ids_match_their_alias(name: str, alias: str) -> None:
    """A snapshot id or different case resolves to its alias's price, never a shorter alias's."""
    assert price_for(name) is PRICES[alias]


@pytest.mark.parametrize("name", ["claude-test", "gpt-test", "claude-opus-4-9", "gpt-5-turbo", "llama3.1:8b"])
def test_unknown_models_have_no_price(name: str) -> None:
    """A model the table does not know costs None, even when an alias is its prefix."""
    assert cost(name, Usage(input_tokens=1000)) is None


def test_cost_counts_every_kind_of_token() -> None:
    """Input, output, cache reads and writes are each priced."""
    usage = Usage(
        input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000, cache_write_tokens=10_000
    )
    assert cost("claude-sonnet-4-6", usage) == pytest.approx(3.0 + 1.5 + 0.6 + 0.0375)


def test_long_prompts_use_the_long_price() -> None:
    """Past its threshold a tiered model prices the whole call at the long rate."""
    short = Usage(input_tokens=100_000, output_tokens=1000)
    long = Usage(input_tokens=100_001, output_tokens=1000)
    assert cost("claude-haiku-5-5", short) == pytest.approx((100_000 * 0.10 + 1000 * 0.50) / 1e6)
    assert cost("claude-haiku-5-5", long) == pytest.approx((100_001 * 0.50 + 1000 * 2.50) / 1e6)


def test_max_cost_is_never_below_the_cost_of_any_split_of_the_prompt() -> None:
    """The worst case prices every prompt token at the dearest rate (an Anthropic cache write), all output
    tokens at the output rate, and a long prompt at the long price; an unknown model has none."""
    worst = max_cost("claude-sonnet-4-5", input_tokens=1000, output_tokens=100)
    assert worst == pytest.approx((1000 * 3.75 + 100 * 15.0) / 1e6)
    for split in ({"input_tokens": 1000}, {"cache_write_tokens": 1000}, {"cache_read_tokens": 1000}):
        billed = cost("claude-sonnet-4-5", Usage(**split, output_tokens=100))
        assert billed is not None and billed <= worst
    long = max_cost("claude-sonnet-4-5", input_tokens=300_000, output_tokens=0)
    assert long == pytest.approx(300_000 * 7.5 / 1e6)
    assert max_cost("no-such-model", input_tokens=1, output_tokens=1) is None
