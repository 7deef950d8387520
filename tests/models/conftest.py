"""Fixtures for model tests: a fake LLM server, fast model settings and a small tool set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.messages import ToolSpec
from agent_runner.testing.fake_llm import FakeLLMServer

SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
FINISH_SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}}


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    """A fake LLM server on a free port."""
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def fast() -> ModelsConfig:
    """Model settings that make retries and timeouts quick."""
    return ModelsConfig(timeout_s=2.0, max_retries=2, max_tokens=1024)


@pytest.fixture
def tools() -> list[ToolSpec]:
    """The tool specs the loop sends: bash and finish."""
    return [
        ToolSpec(name="bash", description="Run a shell command.", parameters=SCHEMA),
        ToolSpec(name="finish", description="Say you are done.", parameters=FINISH_SCHEMA),
    ]
