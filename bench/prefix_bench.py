"""How much of each model request is a cacheable prefix of the previous one, with and without batched elision.

Drives a 30-step session of the real agent loop (agent_runner.agent.Agent, real bash tool in a temp checkout)
through the real anthropic and openai SDKs against the fake LLM server, then compares consecutive requests.
The comparison uses the provider's cache order (Anthropic: tools, system, messages; OpenAI: tools, messages)
with Anthropic's `cache_control` markers removed: they mark where to cache and are not part of the prefix.

    /work/venv/bin/python bench/prefix_bench.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_runner.agent import Agent, AgentConfig
from agent_runner.config import ModelsConfig
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel
from agent_runner.task import Limits
from agent_runner.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, turn
from agent_runner.tools import make_tools, tool_env

N_STEPS = 30
CONTEXT_TOKENS = 12_000  # the session grows to about 25k tokens, so elision has to happen
SYSTEM = "You are a careful software engineer working in a git checkout.\n" + "Rules: " + "be precise. " * 250
TASK = "Read every module under src/ and report what each one does.\n" + "Context line.\n" * 60


def make_checkout(root: Path) -> None:
    """Write N_STEPS modules of 1.5-4 KB each."""
    (root / "src").mkdir()
    for i in range(N_STEPS):
        lines = [
            f"def function_{i}_{j}(x):\n    return x * {j} + {i}  # step {i}\n"
            for j in range(30 + 7 * (i % 5))
        ]
        (root / "src" / f"mod_{i}.py").write_text("".join(lines))


def scripted_replies() -> Callable[[RecordedRequest], Reply]:
    """Return a reply source: read one module per step, then finish."""
    step = {"n": 0}

    def reply(_request: RecordedRequest) -> Reply:
        step["n"] += 1
        if step["n"] >= N_STEPS:
            return turn("done", [("finish", {"summary": "read all modules"})])
        return turn(f"Reading module {step['n']}.", [("bash", {"command": f"cat src/mod_{step['n']}.py"})])

    return reply


def strip_cache_control(value: Any) -> Any:
    """Return `value` without cache_control keys."""
    if isinstance(value, dict):
        return {k: strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache_control(v) for v in value]
    return value


def cache_order(request: RecordedRequest) -> bytes:
    """Return the request's prompt in the order the provider caches it."""
    body = strip_cache_control(request.json)
    parts = [body.get("tools"), body.get("system"), body["messages"]]
    if request.protocol == "openai":
        parts = [body.get("tools"), body["messages"]]
    return json.dumps(parts, ensure_ascii=False).encode()


def common_prefix(a: bytes, b: bytes) -> int:
    """Return the length of the common prefix of two byte strings."""
    n = min(len(a), len(b))
    lo, hi = 0, n
    while lo < hi:  # binary search on equal prefixes: fast for long requests
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def run_session(provider: str, workdir: Path, config: AgentConfig) -> list[RecordedRequest]:
    """Run one scripted session through the fake server and return its requests."""
    models_config = ModelsConfig(timeout_s=10, max_retries=0)
    with FakeLLMServer(default=scripted_replies()) as server:
        if provider == "anthropic":
            model: Any = AnthropicModel(
                "claude-test", api_key="x", config=models_config, base_url=server.anthropic_base_url
            )
        else:
            model = OpenAIModel(
                "gpt-test", api_key="x", config=models_config, base_url=server.openai_base_url
            )
        tools = make_tools(workdir, env=tool_env())
        outcome = Agent(model, tools, config=config, system=SYSTEM).run(TASK)
        model.close()
        server.check_invariants()
        assert outcome.exit_status == "finished", outcome
        return list(server.requests)


def measure(requests: list[RecordedRequest]) -> tuple[list[float], list[int]]:
    """Return the cacheable share of each request after the first and every request's input tokens (bytes/4)."""
    prompts = [cache_order(r) for r in requests]
    shares = [common_prefix(prev, cur) / len(cur) for prev, cur in zip(prompts, prompts[1:], strict=False)]
    return shares, [len(p) // 4 for p in prompts]


def report(label: str, shares: list[float], tokens: list[int]) -> float:
    """Print one run's figures and return its average cacheable share."""
    average = sum(shares) / len(shares)
    uncached = sum(t * (1 - s) for t, s in zip(tokens[1:], shares, strict=False)) + tokens[0]
    print(f"  {label}: average cacheable share {average:.1%}, min {min(shares):.1%}")
    print(f"    input tokens per step: {' '.join(str(t) for t in tokens)}")
    print(f"    total input tokens {sum(tokens)}, of which not cacheable {uncached:.0f}")
    return average


def main() -> int:
    """Run each provider with batched elision and with elision forced every step; print the comparison."""
    limits = Limits(steps=N_STEPS + 5)
    batched = AgentConfig(
        limits=limits, context_tokens=CONTEXT_TOKENS
    )  # the loop's defaults: elide to 50%, 5+ at once
    naive = AgentConfig(
        limits=limits, context_tokens=CONTEXT_TOKENS, elide_to=0.99, elide_batch=1, keep_recent=1
    )
    print(
        f"prefix_bench: {N_STEPS}-step sessions, elision threshold {CONTEXT_TOKENS} tokens, pid {os.getpid()}"
    )
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        make_checkout(Path(tmp))
        for provider in ("anthropic", "openai"):
            print(f"{provider}:")
            good = report(
                "batched elision (agent defaults)", *measure(run_session(provider, Path(tmp), batched))
            )
            bad = report(
                "naive: elision forced every step", *measure(run_session(provider, Path(tmp), naive))
            )
            print(f"  -> cacheable share {good:.1%} vs naive {bad:.1%} ({good / bad:.2f}x); target >= 90%")
            ok = ok and good >= 0.9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
