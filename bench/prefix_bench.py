"""How much of each model request is a cacheable prefix of the previous one, with and without batched elision.

Drives a 30-step session of the real agent loop (worker.agent.Agent, real bash tool in a temp checkout)
through the real anthropic and openai SDKs against the fake LLM server, then compares consecutive requests.
The comparison uses the provider's cache order (Anthropic: tools, system, messages; OpenAI: tools, messages)
with Anthropic's `cache_control` markers removed: they mark where to cache and are not part of the prefix.

    /work/venv/bin/python bench/prefix_bench.py
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent_runner.config.prompts import render
from agent_runner.config.runner import ModelsConfig
from agent_runner.core.task import Limits
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel
from agent_runner.testing.fake_llm import FakeLLMServer, RecordedRequest, Reply, turn
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig

N_STEPS = 30
LOW_THRESHOLD = 6_000  # tokens: low enough that elision happens within the 30 steps
TASK = (
    "Read the modules under src/ and report what each one does.\n" + "Background: a line of context.\n" * 30
)
COMMANDS = ("cat src/mod_{i}.py", "grep -n def src/mod_{i}.py | head -5", "wc -l src/*.py | tail -1")


def system_prompt() -> str:
    """Return the shipped system prompt, as a real run would send it."""
    return render("system", test_command="python -m pytest -q", gate_names=["ruff", "pytest"], network=False)


def make_checkout(root: Path) -> None:
    """Write N_STEPS modules of 1.5-4 KB each."""
    (root / "src").mkdir()
    for i in range(N_STEPS):
        body = [f"def function_{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(40 + 10 * (i % 5))]
        (root / "src" / f"mod_{i}.py").write_text("".join(body))


def scripted_replies() -> Callable[[RecordedRequest], Reply]:
    """Return a reply source: a mix of big and small tool outputs, one call per step, then finish."""
    step = {"n": 0}

    def reply(_request: RecordedRequest) -> Reply:
        step["n"] += 1
        n = step["n"]
        if n >= N_STEPS:
            return turn("done", [("finish", {"summary": "read all modules"})])
        return turn(f"Step {n}.", [("bash", {"command": COMMANDS[n % 3].format(i=n)})])

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
        outcome = Agent(model, tools, config=config, system=system_prompt()).run(TASK)
        model.close()
        server.check_invariants()
        assert outcome.exit_status == "finished", outcome
        return list(server.requests)


def measure(requests: list[RecordedRequest]) -> tuple[list[float], list[int], float]:
    """Return each request's cacheable share, its input tokens (bytes/4) and the token-weighted share."""
    prompts = [cache_order(r) for r in requests]
    prefixes = [common_prefix(prev, cur) for prev, cur in itertools.pairwise(prompts)]
    shares = [p / len(cur) for p, cur in zip(prefixes, prompts[1:], strict=True)]
    weighted = sum(prefixes) / sum(len(p) for p in prompts)
    return shares, [len(p) // 4 for p in prompts], weighted


def report(label: str, requests: list[RecordedRequest]) -> tuple[float, float]:
    """Print one run's figures; return the mean cacheable share and the tokens that cannot be cached."""
    shares, tokens, weighted = measure(requests)
    average = sum(shares) / len(shares)
    print(f"  {label}")
    print(
        f"    cacheable share: mean {average:.1%}, min {min(shares):.1%}; of all input tokens {weighted:.1%}"
    )
    print(f"    input tokens per step: {' '.join(str(t) for t in tokens)}")
    uncached = sum(tokens) * (1 - weighted)
    print(f"    total input tokens {sum(tokens)}; not cacheable {uncached:.0f}")
    return average, uncached


def main() -> int:
    """Run each provider with the loop's elision and with elision forced every step; print the comparison."""
    limits = Limits(steps=N_STEPS + 5)
    default = AgentConfig(limits=limits)
    batched = AgentConfig(limits=limits, context_tokens=LOW_THRESHOLD)
    naive = AgentConfig(
        limits=limits, context_tokens=LOW_THRESHOLD, elide_to=0.99, elide_batch=1, keep_recent=1
    )
    print(
        f"prefix_bench: {N_STEPS}-step sessions of the agent loop through the real SDKs and the fake server"
    )
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        make_checkout(Path(tmp))
        for provider in ("anthropic", "openai"):
            print(f"{provider}:")
            good, _ = report(
                f"agent defaults (elide past {default.context_tokens} tokens: not reached)",
                run_session(provider, Path(tmp), default),
            )
            low, low_uncached = report(
                f"batched elision past {LOW_THRESHOLD} tokens (down to {batched.elide_to:.0%}, >= 5 at once)",
                run_session(provider, Path(tmp), batched),
            )
            bad, bad_uncached = report(
                f"naive baseline: elision forced every step past {LOW_THRESHOLD} tokens",
                run_session(provider, Path(tmp), naive),
            )
            shares = f"defaults {good:.1%}, batched {low:.1%}, naive {bad:.1%}"
            print(f"  -> mean cacheable share: {shares} (target >= 90%)")
            print(f"  -> tokens that miss the cache: naive / batched = {bad_uncached / low_uncached:.2f}x")
            ok = ok and good >= 0.9
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
