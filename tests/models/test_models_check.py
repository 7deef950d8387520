"""`models check`: one request per model against the fake LLM server, and the command's table, JSON, exit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.config.runner import ModelsConfig, RunnerConfig
from agent_runner.models.check import ModelCheck, Status, Verdict, check_model
from agent_runner.testing.fake_llm import FakeLLMServer, error, turn

PING_CALL = turn("", [("ping", {"ok": True})])


def config_for(server: FakeLLMServer, fast: ModelsConfig) -> RunnerConfig:
    models = fast.model_copy(update={"openai_base_url": server.openai_base_url})
    return RunnerConfig(model="openai:gpt-test", models=models)


def check(server: FakeLLMServer, fast: ModelsConfig, spec: str = "openai:gpt-test") -> ModelCheck:
    return check_model(spec, config_for(server, fast), {})


def test_a_good_model_passes(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """A forced tool call that comes back as one: every part ok, one request sent."""
    server.enqueue(PING_CALL)
    result = check(server, fast)
    assert result.verdict is Verdict.OK, result
    assert (result.reachable, result.key, result.model, result.tool_calls) == (Status.OK,) * 4
    assert len(server.requests) == 1 and server.requests[0].json["tools"][0]["function"]["name"] == "ping"


def test_a_refused_key_says_so(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """HTTP 401: the server is reachable, the key refused."""
    server.enqueue(error(401, "invalid api key"))
    result = check(server, fast)
    assert result.verdict is Verdict.FAILED and result.key is Status.FAILED
    assert result.reachable is Status.OK and result.message.startswith("key refused")


def test_an_unknown_model_name_says_so(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """HTTP 404: key accepted, the model name unknown."""
    server.enqueue(error(404, "model gpt-nope does not exist"))
    result = check(server, fast, "openai:gpt-nope")
    assert result.verdict is Verdict.FAILED and result.model is Status.FAILED and result.key is Status.OK
    assert "unknown model" in result.message


def test_a_text_reply_means_tool_calls_unsupported(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """A server that answers the forced tool call with text does not support tool calls."""
    server.enqueue(turn("pong"))
    result = check(server, fast)
    assert result.verdict is Verdict.FAILED and result.tool_calls is Status.FAILED
    assert result.model is Status.OK and "tool calls unsupported" in result.message


def test_an_unset_key_names_the_variable_without_a_request(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """No key: the record says which variable to set; nothing is sent."""
    result = check(server, fast, "anthropic:claude-test")
    assert result.verdict is Verdict.FAILED and result.key is Status.FAILED
    assert "ANTHROPIC_API_KEY" in result.message and not server.requests


@pytest.fixture
def repo(tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose default model is served by the fake server."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    settings = '[tool.agent-runner]\nmodel = "openai:gpt-test"\n[tool.agent-runner.models]\nmax_retries = 0\n'
    (tmp_path / "pyproject.toml").write_text(settings)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    return tmp_path


def test_the_command_prints_a_table_and_exits_0(repo: Path, server: FakeLLMServer) -> None:
    """All good: a table row with the verdict, exit 0."""
    server.enqueue(PING_CALL)
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "models", "check"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "openai:gpt-test" in result.stdout and "ready" in result.stdout


def test_the_command_json_and_exit_1_on_a_failure(repo: Path, server: FakeLLMServer) -> None:
    """--json: one record per model; a failed check exits 1."""
    server.enqueue(PING_CALL, error(404, "no such model"))
    args = ["--root", str(repo), "models", "check", "--json"]
    good = CliRunner().invoke(get_app(), args)
    bad = CliRunner().invoke(get_app(), [*args[:-1], "openai:gpt-nope", "--json"])
    assert good.exit_code == 0 and json.loads(good.stdout)["models"][0]["verdict"] == "ok"
    assert bad.exit_code == 1
    (row,) = json.loads(bad.stdout)["models"]
    assert (row["spec"], row["model"], row["verdict"]) == ("openai:gpt-nope", "failed", "failed")


def test_a_server_that_is_down_is_unreachable(fast: ModelsConfig) -> None:
    """Connection refused: not reachable, nothing else known."""
    with FakeLLMServer() as gone:
        url = gone.openai_base_url
    models = fast.model_copy(update={"openai_base_url": url, "max_retries": 0})
    result = check_model("openai:gpt-test", RunnerConfig(models=models), {})
    assert result.verdict is Verdict.FAILED and result.reachable is Status.FAILED
    assert result.key is Status.UNKNOWN and result.message.startswith("unreachable")


def test_the_command_checks_the_models_of_queued_tasks(repo: Path, server: FakeLLMServer) -> None:
    """Without SPEC: the default model, then each queued task's model, each once."""
    app = get_app()
    added = CliRunner().invoke(app, ["--root", str(repo), "init"])
    assert added.exit_code == 0, added.output
    args = ["--root", str(repo), "add", "fix-lint", "--id", "t1", "--model", "openai:gpt-other"]
    assert CliRunner().invoke(app, args).exit_code == 0
    server.enqueue(PING_CALL, PING_CALL)
    result = CliRunner().invoke(app, ["--root", str(repo), "models", "check", "--json"])
    specs = [row["spec"] for row in json.loads(result.stdout)["models"]]
    assert specs == ["openai:gpt-test", "openai:gpt-other"] and result.exit_code == 0
