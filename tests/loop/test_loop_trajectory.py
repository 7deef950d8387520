"""Trajectories: written per step as it happens, readable after a crash, redacted, rendered for people."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agent_runner.core.messages import Message, ModelTurn, ToolSpec
from agent_runner.core.task import Limits
from agent_runner.models.scripted import ScriptedModel
from agent_runner.tools import make_tools, tool_env
from agent_runner.worker.agent import Agent, AgentConfig
from agent_runner.worker.trajectory import (
    TrajectoryWriter,
    read_trajectory,
    render_trajectory,
    trajectory_path,
)


def _script() -> list[dict[str, object]]:
    return [
        {
            "text": "Looking.",
            "tool_calls": [{"name": "bash", "arguments": {"command": "echo hello-output"}}],
            "cost_usd": 0.001,
        },
        {
            "tool_calls": [
                {"name": "edit", "arguments": {"command": "create", "path": "f.txt", "file_text": "x"}}
            ],
            "cost_usd": 0.001,
        },
        {"tool_calls": [{"name": "finish", "arguments": {"summary": "made f.txt"}}], "cost_usd": 0.001},
    ]


class _Watching:
    """Wraps a model and notes how many trajectory records exist at each query."""

    def __init__(self, inner: ScriptedModel, path: Path, *, crash_at: int | None = None) -> None:
        self.inner, self.path, self.crash_at = inner, path, crash_at
        self.spec = inner.spec
        self.seen: list[list[str]] = []

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        self.seen.append([r["type"] for r in read_trajectory(self.path)] if self.path.exists() else [])
        if len(self.seen) == self.crash_at:
            raise RuntimeError("worker crashed")
        return self.inner.query(system, messages, tools)


def _agent(tmp_path: Path, model: object, path: Path, **writer: object) -> Agent:
    tools = make_tools(tmp_path, env=tool_env())
    config = AgentConfig(limits=Limits(steps=10))
    return Agent(model, tools, config=config, system="sys", trajectory=TrajectoryWriter(path, **writer))  # type: ignore[arg-type]


def test_records_written_as_each_step_happens(tmp_path: Path) -> None:
    """Before each model call the file already holds every earlier step's model and tools records."""
    path = tmp_path / "runs" / "t" / "1" / "trajectory.jsonl"
    model = _Watching(ScriptedModel(_script()), path)
    _agent(tmp_path, model, path).run("task text")
    assert model.seen[0] == ["start", "user"]
    assert model.seen[1] == ["start", "user", "model", "tools"]
    assert model.seen[2] == ["start", "user", "model", "tools", "model", "tools"]
    records = read_trajectory(path)
    assert records[-1]["type"] == "end" and records[-1]["exit_status"] == "finished"
    assert records[2]["message"]["tool_calls"][0]["arguments"] == {"command": "echo hello-output"}
    assert "hello-output" in records[3]["results"][0]["content"] and "seconds" in records[3]["results"][0]


def test_crash_leaves_readable_partial_trajectory(tmp_path: Path) -> None:
    """A crash mid-run and a torn last line still leave every finished record readable."""
    path = tmp_path / "trajectory.jsonl"
    with pytest.raises(RuntimeError):
        _agent(tmp_path, _Watching(ScriptedModel(_script()), path, crash_at=3), path).run("task text")
    with path.open("a") as handle:
        handle.write('{"type": "model", "st')
    records = read_trajectory(path)
    assert [r["type"] for r in records] == ["start", "user", "model", "tools", "model", "tools", "unreadable"]
    text = render_trajectory(path)
    assert "$ echo hello-output" in text and "unreadable" in text and "interrupted" in text


def test_redact_applies_to_every_string(tmp_path: Path) -> None:
    """The redact callable masks secrets in the task, the tool calls and their outputs."""
    path = tmp_path / "trajectory.jsonl"
    script = [{"tool_calls": [{"name": "bash", "arguments": {"command": "echo s3cr3t-value"}}]}, _script()[2]]
    _agent(
        tmp_path, ScriptedModel(script), path, redact=lambda s: s.replace("s3cr3t-value", "[REDACTED]")
    ).run("use s3cr3t-value")
    raw = path.read_text()
    assert "s3cr3t-value" not in raw and raw.count("[REDACTED]") >= 3


def test_render_for_people(tmp_path: Path) -> None:
    """The rendered text shows the task, commands, outputs, the summary, exit status and cost."""
    path = tmp_path / "trajectory.jsonl"
    _agent(tmp_path, ScriptedModel(_script()), path).run("task text")
    text = render_trajectory(path)
    for expected in ("task text", "assistant: Looking.", "$ echo hello-output", "hello-output", "made f.txt"):
        assert expected in text
    assert "ended: finished after 3 steps" in text and "$0.0030" in text.split("== ended")[1]


def test_trajectory_path_convention(tmp_path: Path) -> None:
    """Trajectories live at <state_dir>/runs/<task>/<attempt>/trajectory.jsonl."""
    assert trajectory_path(tmp_path, "fix-a", 2) == tmp_path / "runs" / "fix-a" / "2" / "trajectory.jsonl"
