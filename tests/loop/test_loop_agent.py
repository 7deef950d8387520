"""The agent loop with the scripted model: exits, limits, format errors, stuck runs, parallel calls."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent_runner.core.errors import ModelAuthError, ModelUnavailableError
from agent_runner.core.messages import Message, ModelTurn, Role, ToolCall, ToolSpec, Usage
from agent_runner.core.result import ExitStatus
from agent_runner.core.task import Limits
from agent_runner.models.scripted import ScriptedModel
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig
from agent_runner.worker.trajectory import TrajectoryWriter, read_trajectory


def bash(command: str, **turn: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": "bash", "arguments": {"command": command}}], **turn}


def finish(summary: str = "done") -> dict[str, Any]:
    return {"tool_calls": [{"name": "finish", "arguments": {"summary": summary}}]}


def make_agent(
    checkout: Path, model: Any, *, limits: Limits | None = None, trajectory: Path | None = None, **knobs: Any
) -> Agent:
    config = AgentConfig(limits=limits or Limits(steps=50), **knobs)
    writer = TrajectoryWriter(trajectory) if trajectory else None
    tools = make_tools(checkout, env=tool_env())
    return Agent(model, tools, config=config, system="You are a test agent.", trajectory=writer)


def assert_results_answer_calls(messages: Sequence[Message]) -> None:
    """Every assistant tool call is answered, in order, by the next user message."""
    for current, following in itertools.pairwise(messages):
        if current.role == Role.ASSISTANT and current.tool_calls:
            assert [r.call_id for r in following.tool_results] == [c.id for c in current.tool_calls]


def test_finish_ends_run_with_summary(tmp_path: Path) -> None:
    """Calling finish ends the run as FINISHED with the agent's summary and the counts."""
    model = ScriptedModel([bash("echo hi > a.txt"), finish("wrote a.txt")])
    outcome = make_agent(tmp_path, model).run("Do it.")
    assert outcome.exit_status == ExitStatus.FINISHED and outcome.summary == "wrote a.txt"
    assert (outcome.steps, outcome.model_calls) == (2, 2)
    assert (tmp_path / "a.txt").read_text() == "hi\n"
    assert "[exit code: 0]" in model.requests[1].messages[-1].tool_results[0].content


class _FixedModel:
    """Returns prepared turns without checking them (an adapter that lets anything through)."""

    spec = "fixed"

    def __init__(self, turns: list[ModelTurn]) -> None:
        self.turns = turns
        self.requests: list[list[Message]] = []

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        self.requests.append(list(messages))
        return self.turns[len(self.requests) - 1]


def _turn(text: str = "", calls: Sequence[ToolCall] = ()) -> ModelTurn:
    return ModelTurn(message=Message(role=Role.ASSISTANT, text=text, tool_calls=list(calls)))


def test_turn_without_tool_calls_finishes(tmp_path: Path) -> None:
    """A valid turn with text and no tool call ends the run with the text as summary."""
    outcome = make_agent(tmp_path, _FixedModel([_turn("All done.")])).run("Do it.")
    assert outcome.exit_status == ExitStatus.FINISHED and outcome.summary == "All done."


def test_unknown_tool_is_a_format_error_with_answered_calls(tmp_path: Path) -> None:
    """A call to an unknown tool is answered with an error result and counts as a format error."""
    bad = _turn(calls=[ToolCall(id="c1", name="python", arguments={})])
    model = _FixedModel([bad, _turn(calls=[ToolCall(id="c2", name="finish", arguments={"summary": "ok"})])])
    outcome = make_agent(tmp_path, model).run("Do it.")
    assert outcome.exit_status == ExitStatus.FINISHED
    answer = model.requests[1][-1].tool_results[0]
    assert answer.call_id == "c1" and answer.is_error and "unknown tool 'python'" in answer.content


def test_parallel_calls_run_in_order_each_answered(tmp_path: Path) -> None:
    """Several calls in one turn run in order and each gets its own result, ids matching."""
    turn = {
        "tool_calls": [
            {"name": "edit", "arguments": {"command": "create", "path": "n.txt", "file_text": "first\n"}},
            {"name": "bash", "arguments": {"command": "echo second >> n.txt"}},
            {"name": "bash", "arguments": {"command": "cat n.txt"}},
        ]
    }
    model = ScriptedModel([turn, finish()])
    make_agent(tmp_path, model).run("Do it.")
    messages = model.requests[1].messages
    assert_results_answer_calls(messages)
    assert messages[-1].tool_results[2].content == "first\nsecond\n[exit code: 0]"


def test_tool_error_goes_back_to_model(tmp_path: Path) -> None:
    """A ToolError becomes an is_error result and the run continues."""
    edit = {"name": "edit", "arguments": {"command": "view", "path": "../etc"}}
    model = ScriptedModel([{"tool_calls": [edit]}, finish()])
    assert make_agent(tmp_path, model).run("x").exit_status == ExitStatus.FINISHED
    result = model.requests[1].messages[-1].tool_results[0]
    assert result.is_error and "outside the checkout" in result.content


def test_calls_after_finish_are_not_run(tmp_path: Path) -> None:
    """Calls that follow finish in the same turn are answered but not run."""
    turn = {
        "tool_calls": [
            {"name": "finish", "arguments": {"summary": "s"}},
            {"name": "bash", "arguments": {"command": "touch late"}},
        ]
    }
    agent = make_agent(tmp_path, ScriptedModel([turn]))
    assert agent.run("x").summary == "s"
    assert not (tmp_path / "late").exists()
    assert_results_answer_calls(agent.messages)


def _many_commands(n: int, **turn: Any) -> list[dict[str, Any]]:
    return [bash(f"echo step {i}", **turn) for i in range(n)]


@pytest.mark.parametrize(
    ("limits", "turn", "status"),
    [
        (Limits(steps=3), {}, ExitStatus.STEP_LIMIT),
        (Limits(steps=50, cost_usd=0.3), {"cost_usd": 0.1}, ExitStatus.COST_LIMIT),
        (Limits(steps=50, tokens=250), {"usage": {"output_tokens": 100}}, ExitStatus.TOKEN_LIMIT),
    ],
)
def test_limits_stop_after_three_calls(
    tmp_path: Path, limits: Limits, turn: dict[str, Any], status: str
) -> None:
    """Step, cost and token limits each end the run with their own status once reached."""
    outcome = make_agent(tmp_path, ScriptedModel(_many_commands(10, **turn)), limits=limits).run("x")
    assert outcome.exit_status == status and outcome.model_calls == 3
    assert outcome.error


def test_unknown_cost_still_respects_token_and_step_limits(tmp_path: Path) -> None:
    """With cost unknown (None) the cost limit cannot fire, but token and step limits still do."""
    turns = _many_commands(10, usage={"input_tokens": 50})
    outcome = make_agent(
        tmp_path, ScriptedModel(turns), limits=Limits(steps=4, cost_usd=0.01, tokens=120)
    ).run("x")
    assert outcome.exit_status == ExitStatus.TOKEN_LIMIT and outcome.cost_usd is None
    outcome = make_agent(
        tmp_path, ScriptedModel(_many_commands(10)), limits=Limits(steps=4, cost_usd=0.01)
    ).run("x")
    assert outcome.exit_status == ExitStatus.STEP_LIMIT and outcome.cost_usd is None


def test_time_limit_is_wall_time(tmp_path: Path) -> None:
    """A slow model runs into the minutes limit."""
    model = ScriptedModel(_many_commands(20, delay_s=0.15))
    outcome = make_agent(tmp_path, model, limits=Limits(steps=50, minutes=0.01)).run("x")
    assert outcome.exit_status == ExitStatus.TIME_LIMIT and 2 <= outcome.model_calls <= 6


def test_three_format_errors_in_a_row_stop(tmp_path: Path) -> None:
    """Three consecutive unusable replies end the run as FORMAT_ERRORS, each answered with the problem."""
    model = ScriptedModel([{"text": "I think...", "format_error": "the reply called no tool"}] * 5)
    agent = make_agent(tmp_path, model)
    outcome = agent.run("x")
    assert outcome.exit_status == ExitStatus.FORMAT_ERRORS and outcome.model_calls == 3
    assert "could not be used" in model.requests[1].messages[-1].text


def test_format_error_count_resets_after_good_turn(tmp_path: Path) -> None:
    """Format errors separated by usable turns do not add up."""
    bad = {"format_error": "broken JSON arguments"}
    model = ScriptedModel([bad, bash("echo 1"), bad, bash("echo 2"), bad, finish()])
    assert make_agent(tmp_path, model).run("x").exit_status == ExitStatus.FINISHED


def test_same_call_same_output_three_times_is_stuck(tmp_path: Path) -> None:
    """The same call giving the same output three times in a row ends the run as STUCK."""
    outcome = make_agent(tmp_path, ScriptedModel([bash("ls")] * 10)).run("x")
    assert outcome.exit_status == ExitStatus.STUCK and outcome.model_calls == 3


def test_same_call_with_changing_output_is_not_stuck(tmp_path: Path) -> None:
    """Repeating a call whose output changes is progress, not a stuck run."""
    turns = [bash("echo x >> log && wc -l < log")] * 5 + [finish()]
    assert make_agent(tmp_path, ScriptedModel(turns)).run("x").exit_status == ExitStatus.FINISHED


@pytest.mark.parametrize(
    ("error", "status"), [("context", ExitStatus.CONTEXT_EXCEEDED), ("fatal", ExitStatus.MODEL_ERROR)]
)
def test_model_errors_end_run(tmp_path: Path, error: str, status: str) -> None:
    """A context-length error and a fatal model error end the run with their status and the error text."""
    outcome = make_agent(tmp_path, ScriptedModel([bash("echo 1"), {"error": error}])).run("x")
    assert outcome.exit_status == status and "scripted" in outcome.error and outcome.model_calls == 1


@pytest.mark.parametrize(("error", "exc"), [("auth", ModelAuthError), ("unavailable", ModelUnavailableError)])
def test_auth_and_unavailable_propagate(tmp_path: Path, error: str, exc: type[Exception]) -> None:
    """Auth and infrastructure errors are raised for the job to classify, and noted in the trajectory."""
    path = tmp_path / "t.jsonl"
    with pytest.raises(exc):
        make_agent(tmp_path, ScriptedModel([{"error": error}]), trajectory=path).run("x")
    assert read_trajectory(path)[-1]["type"] == "aborted"


def test_resume_continues_transcript_with_cumulative_budget(tmp_path: Path) -> None:
    """resume adds the gate report after finish's result in one user message; limits stay cumulative."""
    model = ScriptedModel([finish("v1"), bash("echo fix"), finish("v2")])
    agent = make_agent(tmp_path, model, limits=Limits(steps=3))
    assert agent.run("task").summary == "v1"
    outcome = agent.resume("The gates failed: ruff.")
    assert outcome.exit_status == ExitStatus.FINISHED and outcome.summary == "v2" and outcome.model_calls == 3
    report = model.requests[1].messages[-1]
    assert report.role == Role.USER and report.tool_results and report.text == "The gates failed: ruff."
    assert model.requests[1].messages[0] == model.requests[0].messages[0]
    assert_results_answer_calls(agent.messages)
    assert agent.resume("again").exit_status == ExitStatus.STEP_LIMIT


def test_run_twice_refused(tmp_path: Path) -> None:
    """run starts a transcript once; continuing goes through resume."""
    agent = make_agent(tmp_path, ScriptedModel([finish()]))
    agent.run("x")
    with pytest.raises(RuntimeError, match="resume"):
        agent.run("x")


def test_cancel_stops_before_next_call(tmp_path: Path) -> None:
    """A cancelled agent stops before querying the model."""
    model = ScriptedModel([finish()])
    agent = make_agent(tmp_path, model)
    agent.cancel()
    assert agent.run("x").exit_status == ExitStatus.CANCELLED and model.n_calls == 0


def test_usage_and_cost_accumulate(tmp_path: Path) -> None:
    """Usage and cost are summed over every model call."""
    turn = {"usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 100}, "cost_usd": 0.01}
    model = ScriptedModel([bash("echo 1", **turn), {**finish(), **turn}])
    outcome = make_agent(tmp_path, model).run("x")
    assert outcome.usage == Usage(input_tokens=20, output_tokens=10, cache_read_tokens=200)
    assert outcome.cost_usd == pytest.approx(0.02)


def test_time_limit_cuts_long_commands(tmp_path: Path) -> None:
    """A command cannot outlast the minutes limit: its timeout is cut to the time left."""
    model = ScriptedModel([bash("sleep 30")])
    agent = make_agent(tmp_path, model, limits=Limits(steps=5, minutes=0.02))
    outcome = agent.run("x")
    assert outcome.exit_status == ExitStatus.TIME_LIMIT and outcome.seconds < 10
    assert "timed out" in agent.messages[-1].tool_results[0].content


def test_cost_limit_is_never_overshot_by_the_next_call(tmp_path: Path) -> None:
    """$0.0065 a call against $0.03: four calls ($0.026), then the fifth does not start (it would have made
    $0.0325), and the reason names the cost limit and the worst case that did not fit."""
    model = ScriptedModel(_many_commands(10, cost_usd=0.0065))
    outcome = make_agent(tmp_path, model, limits=Limits(steps=50, cost_usd=0.03)).run("x")
    assert outcome.exit_status == ExitStatus.COST_LIMIT and model.n_calls == outcome.model_calls == 4
    assert outcome.cost_usd is not None and outcome.cost_usd <= 0.03
    assert "could cost up to $0.0065" in outcome.error and "$0.0300 cost limit" in outcome.error


def test_a_dearer_worst_case_stops_before_the_call(tmp_path: Path) -> None:
    """The check uses what the call could cost, not what earlier calls did: a $0.01 call whose worst case
    is $0.05 does not start with $0.04 left."""
    turns = [bash("true", cost_usd=0.01), bash("true", cost_usd=0.01, max_cost_usd=0.05)]
    outcome = make_agent(tmp_path, ScriptedModel(turns), limits=Limits(steps=9, cost_usd=0.05)).run("x")
    assert outcome.exit_status == ExitStatus.COST_LIMIT and outcome.model_calls == 1
    assert "could cost up to $0.0500, more than the $0.0400 left" in outcome.error
