"""Context elision: old tool outputs go in batches, the prefix between batches stays byte-identical."""

from __future__ import annotations

from pathlib import Path

from agent_runner.core.messages import Message, Role, ToolCall, ToolResult
from agent_runner.core.result import ExitStatus
from agent_runner.core.task import Limits
from agent_runner.models.scripted import ScriptedModel, ScriptedRequest
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig
from agent_runner.worker.context import ContextConfig, elide_old_outputs, estimate_tokens
from agent_runner.worker.trajectory import TrajectoryWriter, read_trajectory


def _is_prefix(before: ScriptedRequest, after: ScriptedRequest) -> bool:
    """Whether `before`'s messages are, byte for byte, the start of `after`'s."""
    old = [m.model_dump_json() for m in before.messages]
    new = [m.model_dump_json() for m in after.messages]
    return new[: len(old)] == old


def test_elision_in_batches_keeps_prefix_stable(tmp_path: Path) -> None:
    """Over 30 big outputs, elision comes in a few batches; between them each request extends the last."""
    turns = [
        {
            "tool_calls": [
                {"name": "bash", "arguments": {"command": f"head -c 2000 /dev/zero | tr '\\0' a; echo {i}"}}
            ]
        }
        for i in range(30)
    ]
    turns.append({"tool_calls": [{"name": "finish", "arguments": {"summary": "ok"}}]})
    model = ScriptedModel(turns)
    config = AgentConfig(
        limits=Limits(steps=40), context_tokens=3000, elide_to=0.5, elide_batch=2, keep_recent=1
    )
    trajectory = tmp_path / "t.jsonl"
    checkout = tmp_path / "co"
    checkout.mkdir()
    agent = Agent(
        model,
        make_tools(checkout, env=tool_env()),
        config=config,
        system="sys",
        trajectory=TrajectoryWriter(trajectory),
    )
    assert agent.run("The task text.").exit_status == ExitStatus.FINISHED

    requests = model.requests
    breaks = [i for i in range(1, len(requests)) if not _is_prefix(requests[i - 1], requests[i])]
    assert 2 <= len(breaks) <= len(requests) // 3
    assert all(r.messages[0] == Message.user("The task text.") and r.system == "sys" for r in requests)
    assert all(estimate_tokens(r.system, r.messages) < 3000 + 700 for r in requests)
    assert sum(1 for rec in read_trajectory(trajectory) if rec["type"] == "elided") == len(breaks)
    newest = requests[-1].messages[-1].tool_results[0].content
    assert not newest.startswith("[elided")


def _transcript(n_turns: int, size: int) -> list[Message]:
    messages = [Message.user("task " + "t" * size)]
    for i in range(n_turns):
        call = ToolCall(id=f"c{i}", name="bash", arguments={"command": "x"})
        messages.append(Message(role=Role.ASSISTANT, tool_calls=[call]))
        messages.append(
            Message(role=Role.USER, tool_results=[ToolResult(call_id=f"c{i}", content="o" * size)])
        )
    return messages


def test_elide_oldest_first_and_protect_recent() -> None:
    """The oldest outputs go first; the task message and the newest turns are never elided."""
    messages = _transcript(6, 4000)
    config = ContextConfig(context_tokens=4000, elide_to=0.5, elide_batch=1, keep_recent=2)
    out, n = elide_old_outputs(messages, config, size=estimate_tokens("", messages))
    elided = [m.tool_results[0].content.startswith("[elided") for m in out if m.tool_results]
    assert n == 4 and elided == [True, True, True, True, False, False]
    assert out[0] == messages[0] and len(out) == len(messages)


def test_elide_batch_is_a_minimum() -> None:
    """Even when little must be freed, at least elide_batch outputs go, so batches stay rare."""
    messages = _transcript(6, 400)
    config = ContextConfig(context_tokens=500, elide_to=0.9, elide_batch=3, keep_recent=1)
    _, n = elide_old_outputs(messages, config, size=510)
    assert n == 3


def test_elided_and_small_outputs_are_left_alone() -> None:
    """Already-elided outputs and short ones are not rewritten again."""
    messages = _transcript(4, 100)
    out, n = elide_old_outputs(messages, ContextConfig(context_tokens=10, elide_min_chars=200), size=1000)
    assert n == 0 and out == messages
