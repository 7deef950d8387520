"""The agent loop driving the real SDKs against the fake server: transcripts stay valid for both providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.result import ExitStatus
from agent_runner.core.task import Limits
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel
from agent_runner.testing.fake_llm import FakeLLMServer, turn
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_session_with_a_format_error_keeps_the_transcript_valid(
    server: FakeLLMServer, fast: ModelsConfig, tmp_path: Path, provider: str
) -> None:
    """Parallel calls, an invented tool and a finish: every request is valid and system/tools never change."""
    (tmp_path / "a.txt").write_text("hello\n")
    server.enqueue(
        turn("look", [("bash", {"command": "cat a.txt"}), ("bash", {"command": "ls"})]),
        turn("", [("browse", {"url": "x"})]),
        turn("", [("bash", {"command": "wc -l a.txt"})]),
        turn("done", [("finish", {"summary": "read a.txt"})]),
    )
    model: Any
    if provider == "anthropic":
        model = AnthropicModel("claude-test", api_key="t", config=fast, base_url=server.anthropic_base_url)
    else:
        model = OpenAIModel("gpt-test", api_key="t", config=fast, base_url=server.openai_base_url)
    tools = make_tools(tmp_path, env=tool_env())
    outcome = Agent(model, tools, config=AgentConfig(limits=Limits(steps=10)), system="sys").run("task")
    model.close()
    assert outcome.exit_status is ExitStatus.FINISHED and outcome.summary == "read a.txt"
    assert outcome.model_calls == 4 and outcome.cost_usd is None and outcome.usage.total > 0
    server.check_invariants()
    assert "hello" in server.requests[1].body.decode()
    assert "unknown tool 'browse'" in server.requests[2].body.decode()


@pytest.mark.parametrize(
    ("provider", "name", "limit"),
    [("anthropic", "claude-sonnet-4-5", 0.05), ("openai", "gpt-4.1", 0.028)],
)
def test_cost_limit_holds_with_real_prices_and_max_tokens(
    server: FakeLLMServer, fast: ModelsConfig, tmp_path: Path, provider: str, name: str, limit: float
) -> None:
    """Through the SDKs, each call's worst case (prompt so far at the dearest input price, max_tokens out)
    must fit what is left: two calls run, the third would not fit, and no request is sent for it."""
    usage = {"input": 2000, "output": 500}  # $0.0135 a call on claude-sonnet-4-5, $0.008 on gpt-4.1
    server.enqueue(*[turn("", [("bash", {"command": f"echo {n}"})], usage=usage) for n in range(6)])
    model: Any
    if provider == "anthropic":
        model = AnthropicModel(name, api_key="t", config=fast, base_url=server.anthropic_base_url)
    else:
        model = OpenAIModel(name, api_key="t", config=fast, base_url=server.openai_base_url)
    tools = make_tools(tmp_path, env=tool_env())
    config = AgentConfig(limits=Limits(steps=10, cost_usd=limit))
    outcome = Agent(model, tools, config=config, system="sys").run("task")
    model.close()
    assert outcome.exit_status is ExitStatus.COST_LIMIT and "could cost up to" in outcome.error
    assert outcome.model_calls == len(server.requests) == 2
    assert outcome.cost_usd is not None and outcome.cost_usd <= limit
