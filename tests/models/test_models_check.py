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
from agent_runner.models.server_info import MAX_BODY_BYTES
from agent_runner.testing.fake_llm import FakeLLMServer, error, raw, raw_json, turn
from agent_runner.testing.fake_llm_wire import Reply

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
    server.enqueue(turn("pong"), turn("pong"))
    result = check(server, fast)
    assert result.verdict is Verdict.FAILED and result.tool_calls is Status.FAILED
    assert result.model is Status.OK and "tool calls unsupported" in result.message


def test_a_server_that_drops_the_tools_is_named(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """No tool call and the same prompt tokens without the tool: the server ignored the tools."""
    same = {"input": 40, "output": 3}  # what llama-cpp-python reports when its chat format drops `tools`
    server.enqueue(turn("pong", usage=same), turn("pong", usage=same))
    result = check(server, fast)
    assert result.verdict is Verdict.FAILED and result.tool_calls is Status.FAILED
    assert result.message.startswith("the server ignored the tools (40 prompt tokens"), result.message
    assert "chat format" in result.message
    assert (result.prompt_tokens, result.prompt_tokens_without_tools) == (40, 40)
    assert "tools" in server.requests[0].json and "tools" not in server.requests[1].json
    assert server.requests[1].json["max_tokens"] == 16  # only its prompt size matters


def test_a_model_that_ignores_passed_tools_is_not_blamed_on_the_server(
    server: FakeLLMServer, fast: ModelsConfig
) -> None:
    """More prompt tokens with the tool than without: the server passed it, the model wrote text."""
    server.enqueue(turn("pong", usage={"input": 90}), turn("pong", usage={"input": 40}))
    result = check(server, fast)
    assert result.tool_calls is Status.FAILED and "ignored the tools" not in result.message
    assert "the server passed the tools: 90 prompt tokens with the tools, 40 without" in result.message


def test_a_tool_call_written_as_text_is_named(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """A reply whose text is the call itself: the server does not parse tool calls; no second request."""
    server.enqueue(turn('{"name": "ping", "arguments": {"ok": true}}'))
    result = check(server, fast)
    assert result.tool_calls is Status.FAILED and "wrote the tool call as text" in result.message
    assert len(server.requests) == 1


def test_vllm_context_window_is_read(server: FakeLLMServer, fast: ModelsConfig) -> None:
    """vLLM's /v1/models `max_model_len` of the named model is the context; a late elision is noted."""
    cards = [{"id": "other", "max_model_len": 999_999}, {"id": "gpt-test", "max_model_len": 32768}]
    server.gets["/v1/models"] = raw_json({"object": "list", "data": cards})
    server.enqueue(PING_CALL)
    result = check(server, fast)
    assert result.verdict is Verdict.OK and result.context == 32768, result
    assert (
        f"models.context_tokens (150000) + max_tokens pass the window: set it to at most {32768 - 1024}"
        in (result.message)
    )


def test_llama_server_props_context_too_small_for_max_tokens_fails(
    server: FakeLLMServer, fast: ModelsConfig
) -> None:
    """llama-server's per-slot n_ctx from /props; max_tokens at or past it fails the check."""
    props = {"n_ctx": 8192, "total_slots": 4, "default_generation_settings": {"n_ctx": 2048}}
    server.gets["/props"] = raw_json(props)
    server.enqueue(PING_CALL)
    result = check(server, fast.model_copy(update={"max_tokens": 4096}))
    assert result.context == 2048 and result.verdict is Verdict.FAILED
    assert "models.max_tokens (4096) leaves no room" in result.message


@pytest.mark.parametrize(
    "answer",
    [
        raw(b"<html>not json</html>", content_type="text/html"),
        raw_json({"data": [{"id": "gpt-test", "max_model_len": True}]}),
        raw_json({"data": [{"id": "gpt-test", "max_model_len": -5}]}),
        raw_json({"data": [{"id": "a", "max_model_len": 4096}, {"id": "b", "max_model_len": 8192}]}),
        raw(b'{"data": [' + b" " * MAX_BODY_BYTES + b"]}"),
        error(500, "boom"),
    ],
    ids=["html", "bool", "negative", "not-listed", "too-large", "error"],
)
def test_an_unusable_model_list_leaves_the_context_unknown(
    server: FakeLLMServer, fast: ModelsConfig, answer: Reply
) -> None:
    """Junk, an implausible number, another model's card, a huge body, an error: unknown, not guessed."""
    server.gets["/v1/models"] = answer
    server.enqueue(PING_CALL)
    result = check(server, fast)
    assert result.verdict is Verdict.OK and result.context is None
    assert result.message == "ready"


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


def test_the_command_shows_the_context_window(repo: Path, server: FakeLLMServer) -> None:
    """The table's context column and the JSON record carry what the server reported."""
    server.gets["/v1/models"] = raw_json({"data": [{"id": "gpt-test", "max_model_len": 32768}]})
    server.enqueue(PING_CALL, PING_CALL)
    table = CliRunner().invoke(get_app(), ["--root", str(repo), "models", "check"])
    data = CliRunner().invoke(get_app(), ["--root", str(repo), "models", "check", "--json"])
    assert table.exit_code == 0 and "32,768" in table.stdout, table.output
    assert json.loads(data.stdout)["models"][0]["context"] == 32768


def test_a_long_message_reads_whole_in_a_narrow_terminal(repo: Path, server: FakeLLMServer) -> None:
    """At 80 columns the message is a line under the table, not a column folded letter by letter."""
    server.enqueue(error(404, "no such model"))
    args = ["--root", str(repo), "models", "check", "openai:gpt-nope"]
    result = CliRunner().invoke(get_app(), args, env={"COLUMNS": "80"})
    assert result.exit_code == 1
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("openai:gpt-nope: ")]
    assert "404" in line or "model" in line, line
