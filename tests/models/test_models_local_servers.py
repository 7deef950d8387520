"""Local OpenAI-compatible servers through the real SDKs against the fake server: what the adapter sends
(llama-cpp-python's strictness), a request refused every time as a model error, and calls cut off at the
agent's time limit."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from agent_runner.config.runner import ModelsConfig, load_config
from agent_runner.core.errors import ModelFatalError, ModelUnavailableError
from agent_runner.core.messages import Message, Role, ToolCall, ToolSpec
from agent_runner.core.result import ExitStatus, Outcome, WorkRequest
from agent_runner.core.task import Limits, load_task_file
from agent_runner.models.anthropic import AnthropicModel
from agent_runner.models.openai import OpenAIModel, convert_messages
from agent_runner.testing.fake_llm import FakeLLMServer, error, hang, llama_cpp_check, turn
from agent_runner.testing.fake_llm_wire import LLAMA_CPP_NULL_CONTENT, Reply
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig
from agent_runner.worker.deadline import AttemptTimeout
from agent_runner.worker.job import run_job
from agent_runner.worker.limits import AttemptDeadline

KEYS = {"ANTHROPIC_API_KEY": "test-key", "OPENAI_API_KEY": "test-key"}
PYDANTIC_500 = (
    "1 validation error for ChatCompletionRequest\nmessages.1.content\n  Input should be a valid string"
)
HANG_S = 60.0  # far past every limit below: a test that waited for it would take minutes


@pytest.fixture
def llama_cpp() -> Iterator[FakeLLMServer]:
    """A fake server that, like llama-cpp-python's, answers an assistant `content: null` with an HTTP 500."""
    with FakeLLMServer(check=llama_cpp_check) as fake:
        yield fake


def _model(provider: str, server: FakeLLMServer, config: ModelsConfig) -> Any:
    if provider == "anthropic":
        return AnthropicModel("claude-test", api_key="t", config=config, base_url=server.anthropic_base_url)
    return OpenAIModel("gpt-test", api_key="t", config=config, base_url=server.openai_base_url)


def _agent(model: Any, tmp_path: Path, limits: Limits, **kwargs: Any) -> Agent:
    tools = make_tools(tmp_path, env=tool_env())
    return Agent(model, tools, config=AgentConfig(limits=limits), system="sys", **kwargs)


def test_tool_call_turn_without_text_sends_empty_content() -> None:
    """An assistant turn with tool calls and no text goes out with `content: ""`, never null."""
    calls = [ToolCall(id="c1", name="bash", arguments={"command": "ls"})]
    wire = convert_messages("sys", [Message.user("t"), Message(role=Role.ASSISTANT, tool_calls=calls)])
    assert wire[-1]["content"] == "" and wire[-1]["tool_calls"][0]["id"] == "c1"


def test_fake_llama_cpp_refuses_null_content(llama_cpp: FakeLLMServer) -> None:
    """The fake really behaves like llama-cpp-python: null content gets its 500, "" is answered."""
    llama_cpp.enqueue(turn("ok"))
    client = openai.OpenAI(api_key="t", base_url=llama_cpp.openai_base_url, max_retries=0)
    call = {"id": "c1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}
    messages: list[Any] = [
        {"role": "user", "content": "t"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "out"},
    ]
    with pytest.raises(openai.InternalServerError, match="Input should be a valid string"):
        client.chat.completions.create(model="m", messages=messages)
    messages[1]["content"] = ""
    assert client.chat.completions.create(model="m", messages=messages).choices[0].message.content == "ok"
    client.close()


def test_two_step_task_gets_past_its_first_tool_call(
    llama_cpp: FakeLLMServer, fast: ModelsConfig, tmp_path: Path
) -> None:
    """A tool call, then finish, against a llama-cpp-python-like server: the second request is answered."""
    llama_cpp.enqueue(turn("", [("bash", {"command": "echo hi"})]), turn("", [("finish", {"summary": "ok"})]))
    model = _model("openai", llama_cpp, fast)
    outcome = _agent(model, tmp_path, Limits(steps=5)).run("task")
    model.close()
    assert outcome.exit_status is ExitStatus.FINISHED and outcome.summary == "ok", outcome.error
    assert llama_cpp.requests[1].json["messages"][2]["content"] == ""
    llama_cpp.check_invariants()


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_validation_500_is_a_refusal_not_an_outage(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], provider: str
) -> None:
    """A 5xx whose body is a validation error, the same on every retry, fails as a model error."""
    server.default = error(500, PYDANTIC_500)
    model = _model(provider, server, fast)
    with pytest.raises(ModelFatalError) as caught:
        model.query("s", [Message.user("t")], tools)
    model.close()
    message = str(caught.value)
    assert (
        "refuses the request as invalid (HTTP 500" in message and "Input should be a valid string" in message
    )
    assert "re-queued" not in message
    assert len(server.requests) == fast.max_retries + 1  # the SDK tried it again: the same answer each time


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_plain_500_stays_an_outage(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec], provider: str
) -> None:
    """A 5xx that is not a validation error is the server being down: infrastructure, with no promise."""
    server.default = error(503, "upstream overloaded")
    model = _model(provider, server, fast)
    with pytest.raises(ModelUnavailableError) as caught:
        model.query("s", [Message.user("t")], tools)
    model.close()
    assert not isinstance(caught.value, ModelFatalError)
    assert "HTTP 503" in str(caught.value) and "re-queued" not in str(caught.value)


@pytest.mark.parametrize(
    "reply", [hang(HANG_S), error(429, retry_after=HANG_S)], ids=["hung-call", "retry-after-past-limit"]
)
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_minutes_limit_cuts_off_a_call_in_flight(
    server: FakeLLMServer, tmp_path: Path, provider: str, reply: Reply
) -> None:
    """A call that would outlast `minutes` (a hang, or a wait the server asks) ends the run at the limit."""
    server.default = reply
    model = _model(provider, server, ModelsConfig(timeout_s=HANG_S, max_retries=3))
    started = time.monotonic()
    outcome = _agent(model, tmp_path, Limits(minutes=0.05)).run("task")
    elapsed = time.monotonic() - started
    model.close()
    assert outcome.exit_status is ExitStatus.TIME_LIMIT
    assert "time limit reached" in outcome.error and "cut off" in outcome.error
    assert elapsed < 3 + 10, f"the attempt ran {elapsed:.0f} s past a 3 s limit"


def test_attempt_deadline_cuts_off_a_call_in_flight(server: FakeLLMServer, tmp_path: Path) -> None:
    """With no `minutes`, the attempt's `attempt_minutes` still bounds a hung call: AttemptTimeout."""
    server.default = hang(HANG_S)
    model = _model("openai", server, ModelsConfig(timeout_s=HANG_S, max_retries=3))
    deadline = AttemptDeadline(ends_at=time.time() + 2, minutes=2 / 60)
    started = time.monotonic()
    with pytest.raises(AttemptTimeout):
        _agent(model, tmp_path, Limits(), attempt_deadline=deadline).run("task")
    model.close()
    assert time.monotonic() - started < 2 + 10


# -- the real job ------------------------------------------------------------------------------------------
def _project(tmp_path: Path, server: FakeLLMServer) -> Path:
    """Return a committed git repo whose pyproject points the OpenAI SDK at `server`."""
    root = tmp_path / "repo"
    (root / "tasks").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[tool.agent-runner]\nsandbox = "none"\ntest = "true"\n[tool.agent-runner.models]\n'
        f'openai_base_url = "{server.openai_base_url}"\nmax_retries = 1\ntimeout_s = {HANG_S}\n',
        encoding="utf-8",
    )
    (root / "calc.py").write_text("x = 1\n", encoding="utf-8")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True)
    return root


def _run_job(root: Path, **fields: Any) -> Any:
    front = yaml.safe_dump({"kind": "change", "model": "openai:gpt-test", "reflection_rounds": 0, **fields})
    path = root / "tasks" / "chore.md"
    path.write_text(f"---\n{front}---\nDo the chore.\n", encoding="utf-8")
    config = load_config(root).model_dump(mode="json", by_alias=True)
    request = WorkRequest(
        task=load_task_file(path), repo=str(root), config=config, secrets=KEYS, model="openai:gpt-test"
    )
    return run_job(request, workdir=root / ".agent-runner")


def test_job_fails_a_refused_request_as_a_model_error(server: FakeLLMServer, tmp_path: Path) -> None:
    """The real job: a request the server refuses every time is spent as a model error, never re-queued."""
    server.default = error(500, LLAMA_CPP_NULL_CONTENT)
    result = _run_job(_project(tmp_path, server))
    assert result.outcome == Outcome.REJECTED and result.exit_status == ExitStatus.MODEL_ERROR, result.reason
    assert "Input should be a valid string" in result.reason and "re-queued" not in result.reason


def test_job_ends_a_hung_call_at_its_minutes_limit(server: FakeLLMServer, tmp_path: Path) -> None:
    """The real job: a server hanging far past `minutes` ends the attempt as time_limit naming `minutes`."""
    server.default = hang(HANG_S)
    started = time.monotonic()
    result = _run_job(_project(tmp_path, server), limits={"minutes": 0.05})
    elapsed = time.monotonic() - started
    assert result.outcome == Outcome.REJECTED and result.exit_status == ExitStatus.TIME_LIMIT, result.reason
    assert result.limit == "minutes" and "time limit reached" in result.reason
    assert elapsed < HANG_S / 2, f"the attempt took {elapsed:.0f} s"


def test_tools_go_out_with_tool_choice_auto(
    server: FakeLLMServer, fast: ModelsConfig, tools: list[ToolSpec]
) -> None:
    """`tool_choice: auto` with tools (llama-cpp-python's tool formats drop them without it)."""
    server.enqueue(turn("a"), turn("b"))
    model = _model("openai", server, fast)
    model.query("s", [Message.user("t")], tools)
    model.query("s", [Message.user("t")], [])
    model.close()
    assert server.requests[0].json["tool_choice"] == "auto" and "tool_choice" not in server.requests[1].json


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_try_timed_out_at_the_limit_without_retries_is_a_time_limit(
    server: FakeLLMServer, tmp_path: Path, provider: str
) -> None:
    """max_retries = 0: the one try times out at `minutes`; that is the limit, not an outage to re-queue."""
    server.default = hang(HANG_S)
    model = _model(provider, server, ModelsConfig(timeout_s=HANG_S, max_retries=0))
    outcome = _agent(model, tmp_path, Limits(minutes=0.02)).run("task")
    model.close()
    assert outcome.exit_status is ExitStatus.TIME_LIMIT, outcome.error
    assert "time limit reached" in outcome.error
