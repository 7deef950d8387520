"""get_model: spec parsing, plug-in classes, keys from secrets or the environment, base URLs."""

from __future__ import annotations

import pytest

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import ConfigError, ModelAuthError
from agent_runner.core.messages import Message, ToolSpec
from agent_runner.models import get_model
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel
from agent_runner.models.scripted import ScriptedModel
from agent_runner.testing.fake_llm import FakeLLMServer, turn


def test_unknown_provider_lists_the_known_ones() -> None:
    """A typo in the provider names every provider that exists."""
    with pytest.raises(ConfigError, match="unknown model provider 'antropic'") as caught:
        get_model("antropic:claude-x", config=ModelsConfig())
    assert all(
        name in str(caught.value) for name in ("anthropic:", "openai:", "scripted:", "package.module:Class")
    )


def test_spec_without_a_name_is_refused() -> None:
    """`openai:` alone says how to write the spec."""
    with pytest.raises(ConfigError, match="openai:<name>"):
        get_model("openai:", config=ModelsConfig())


@pytest.mark.parametrize(
    ("spec", "env_var"),
    [("anthropic:claude-test", "ANTHROPIC_API_KEY"), ("openai:gpt-test", "OPENAI_API_KEY")],
)
def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch, spec: str, env_var: str) -> None:
    """Without a key the error names the environment variable to set."""
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ModelAuthError, match=f"set {env_var}"):
        get_model(spec, config=ModelsConfig())


def test_secrets_win_over_the_environment(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, tools: list[ToolSpec]
) -> None:
    """A key in the worker's secrets is used before the environment's, and the env base URL is honoured."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    model = get_model(
        "anthropic:claude-test", config=ModelsConfig(), secrets={"ANTHROPIC_API_KEY": "from-secrets"}
    )
    assert isinstance(model, AnthropicModel)
    server.enqueue(turn("", [("bash", {"command": "ls"})]))
    model.query("s", [Message.user("t")], tools)
    model.close()
    headers = server.requests[0].headers
    assert "from-secrets" in headers.get("authorization", "") + headers.get("x-api-key", "")
    assert "from-env" not in str(headers)


def test_config_base_url_wins_over_the_environment(
    server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """models.openai_base_url in config beats OPENAI_BASE_URL."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    model = get_model("openai:gpt-test", config=ModelsConfig(openai_base_url=server.openai_base_url))
    assert isinstance(model, OpenAIModel)
    assert str(model._client.base_url).rstrip("/") == server.openai_base_url
    model.close()


def test_dotted_path_plugin(tmp_path) -> None:
    """`package.module:Class:name` loads any class with from_spec."""
    script = tmp_path / "s.yaml"
    script.write_text("turns: [{text: hi}]\n")
    model = get_model(f"agent_runner.models.scripted:ScriptedModel:{script}", config=ModelsConfig())
    assert isinstance(model, ScriptedModel)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_such_pkg.mod:Model", "cannot import"),
        ("agent_runner.models.pricing:Nope", "no model class"),
        ("agent_runner.models.pricing:Price", "no from_spec"),
    ],
)
def test_bad_plugin_paths_are_config_errors(spec: str, words: str) -> None:
    """A plug-in path that cannot be loaded says why."""
    with pytest.raises(ConfigError, match=words):
        get_model(spec, config=ModelsConfig())
