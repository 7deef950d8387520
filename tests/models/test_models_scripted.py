"""ScriptedModel: replaying YAML/JSON scripts, delays, scripted errors, the shipped demo script."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent_runner.config.runner import ModelsConfig
from agent_runner.core.errors import ConfigError, ContextExceededError, ModelUnavailableError
from agent_runner.core.messages import Message, StopReason, ToolSpec, Usage
from agent_runner.models import get_model
from agent_runner.models.scripted import ScriptedModel

SCRIPT = """
turns:
  - text: look
    tool_calls: [{name: bash, arguments: {command: ls}}]
    usage: {input_tokens: 10, output_tokens: 2}
    cost_usd: 0.001
  - tool_calls: [{name: finish, arguments: {summary: done}, id: my-id}]
"""


def test_replays_a_yaml_script_from_a_spec(tmp_path: Path, tools: list[ToolSpec]) -> None:
    """scripted:<file> replays turns in order with generated ids, then answers with no tool call."""
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT)
    model = get_model(f"scripted:{path}", config=ModelsConfig())
    first = model.query("s", [Message.user("t")], tools)
    assert first.message.text == "look" and first.message.tool_calls[0].id == "call_1_0"
    assert first.usage == Usage(input_tokens=10, output_tokens=2) and first.cost_usd == 0.001
    assert model.query("s", [], tools).message.tool_calls[0].id == "my-id"
    end = model.query("s", [], tools)
    assert (
        end.message.tool_calls == [] and end.stop_reason is StopReason.END_TURN and end.format_error is None
    )
    assert isinstance(model, ScriptedModel) and model.n_calls == 3


def test_json_script_with_delay(tmp_path: Path, tools: list[ToolSpec]) -> None:
    """A JSON script works the same and a turn's delay_s is waited out."""
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"turns": [{"text": "slow", "delay_s": 0.2}]}))
    model = ScriptedModel.from_file(path)
    started = time.monotonic()
    assert model.query("s", [], tools).message.text == "slow"
    assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize(
    ("kind", "error_class"), [("context", ContextExceededError), ("unavailable", ModelUnavailableError)]
)
def test_scripted_errors_are_raised(tools: list[ToolSpec], kind: str, error_class: type[Exception]) -> None:
    """A turn with `error:` raises that model error, for loop and job tests."""
    model = ScriptedModel([{"error": kind}])
    with pytest.raises(error_class, match="turn 1"):
        model.query("s", [], tools)


def test_records_what_it_was_asked(tools: list[ToolSpec]) -> None:
    """Each query is recorded with the system prompt, transcript and tools."""
    model = ScriptedModel([{"text": "a"}])
    model.query("sys", [Message.user("task")], tools)
    assert model.requests[0].system == "sys" and model.requests[0].messages[0].text == "task"


@pytest.mark.parametrize(
    ("content", "words"),
    [("turns: [{txt: hi}]", "turns.0.txt"), ("turns: [", "not valid"), ("{}", "turns")],
)
def test_bad_script_names_file_and_problem(tmp_path: Path, content: str, words: str) -> None:
    """An invalid script is a ConfigError naming the file and the field."""
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=words) as caught:
        get_model(f"scripted:{path}", config=ModelsConfig())
    assert str(path) in str(caught.value)


def test_missing_script_file(tmp_path: Path) -> None:
    """A script path that does not exist says so."""
    with pytest.raises(ConfigError, match="cannot read"):
        get_model(f"scripted:{tmp_path / 'nope.yaml'}", config=ModelsConfig())


def test_shipped_demo_script_ends_with_finish(tools: list[ToolSpec]) -> None:
    """The demo script in the package loads and ends by calling finish."""
    path = Path(__file__).parents[2] / "agent_runner" / "models" / "scripts" / "demo.yaml"
    model = ScriptedModel.from_file(path)
    names = [model.query("s", [], tools).message.tool_calls[0].name for _ in model.turns]
    assert names[-1] == "finish"
