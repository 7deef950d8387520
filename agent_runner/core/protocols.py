"""The seams of agent-runner: models, tools, executors, gates and publishers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from agent_runner.core.gate_settings import GateSettings
from agent_runner.core.messages import Message, ModelTurn, ToolSpec
from agent_runner.core.redact import SecretValues
from agent_runner.core.result import GateResult, TaskResult, WorkRequest
from agent_runner.core.task import Task


@runtime_checkable
class Model(Protocol):
    """A chat model with native tool calls."""

    spec: str

    def query(self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelTurn:
        """Return the next assistant turn; raise ModelError subclasses on failure."""
        ...


@runtime_checkable
class PricedModel(Model, Protocol):
    """A model that can bound the cost of its next call, so a cost limit is never overshot."""

    def max_call_cost(self, input_tokens: int) -> float | None:
        """Return the most a call with `input_tokens` of prompt can cost (None: it cannot say)."""
        ...


class Tool(Protocol):
    """A tool the agent can call; errors are raised as ToolError and shown to the agent."""

    spec: ToolSpec

    def run(self, arguments: dict[str, Any]) -> str:
        """Run the tool and return its output for the model."""
        ...


LOCAL_MACHINE = "local"  # the machine name of this machine's own workers


@dataclass(frozen=True)
class Slot:
    """One place a task can run: a worker on a machine."""

    name: str
    machine: str = LOCAL_MACHINE
    tags: frozenset[str] = field(default_factory=frozenset)

    def accepts(self, pin: str | None) -> bool:
        """Return whether a task pinned to `pin` (machine name or tag) may run here."""
        return pin is None or pin == self.machine or pin in self.tags


class Executor(Protocol):
    """A transport for the worker command: runs one attempt somewhere and returns its result."""

    def slots(self) -> list[Slot]:
        """Return the worker slots available now (unreachable machines left out)."""
        ...

    def run(self, request: WorkRequest, slot: Slot) -> TaskResult:
        """Run one attempt to completion; raise ExecutorError when the worker or machine failed."""
        ...

    def cancel(self, task_id: str, attempt: int) -> None:
        """Stop a running attempt and everything it started."""
        ...

    def close(self) -> None:
        """Release connections and processes."""
        ...


@dataclass(frozen=True)
class GateContext:
    """What a gate may look at: the checkout, the task, the repo's test command and the runner's settings.

    Gates that run the agent's code run it in `sandbox` (the one of its shell); the diff policy refuses
    `secrets` (the values this worker holds) by value.
    """

    checkout: Path
    task: Task
    base_commit: str
    test_command: str
    settings: GateSettings = field(default_factory=GateSettings)
    sandbox: Sandbox | None = None
    secrets: SecretValues = field(default_factory=SecretValues, repr=False)


class Measurement(Protocol):
    """What a gate measured before the agent started (a test or a lint report)."""

    @property
    def command(self) -> str:
        """The command that measured it."""
        ...

    @property
    def exit_code(self) -> int:
        """How that command ended."""
        ...


class Gate(Protocol):
    """A runner-run check: measured before the agent starts and again when it says it is done."""

    name: str

    def baseline(self, ctx: GateContext) -> Measurement | None:
        """Measure the checkout before the agent starts (None: the gate needs no baseline)."""
        ...

    def check(self, ctx: GateContext, baseline: Measurement | None) -> GateResult:
        """Measure again and compare with the baseline this gate returned."""
        ...


class Publisher(Protocol):
    """Delivers an accepted result to people (a pushed branch and a pull request)."""

    def publish(self, task: Task, result: TaskResult, repo: Path) -> str | None:
        """Push and open or update the PR; return its URL. Safe to repeat. Raise GitHubError on failure."""
        ...


class Sandbox(Protocol):
    """Wraps the agent's shell commands so they cannot reach beyond the checkout."""

    name: str

    def wrap(self, argv: list[str]) -> list[str]:
        """Return the command line that runs `argv` inside the sandbox."""
        ...
