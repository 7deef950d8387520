"""The agent loop driving the real SDKs against the fake server: transcripts stay valid for both providers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runner.agent import Agent, AgentConfig
from agent_runner.config import ModelsConfig
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel
from agent_runner.result import ExitStatus
from agent_runner.task import Limits
from agent_runner.testing.fake_llm import FakeLLMServer, turn
from agent_runner.tools import make_tools, tool_env


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
