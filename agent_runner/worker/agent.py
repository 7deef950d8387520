"""The agent loop: query the model, run its tool calls in order, append the results, until done or a limit.

Every limit is hard and ends the run with its own ExitStatus (result.py); the loop never decides that a task
is done, it only reports how the agent stopped. Model errors: ContextExceededError -> CONTEXT_EXCEEDED, any
other ModelFatalError -> MODEL_ERROR, except ModelAuthError and ModelNotFoundError (no attempt on that model
can do better), which propagate, as ModelUnavailableError does. A call cut off at its deadline
(models/deadline.py: the time left under `minutes` and the attempt's `attempt_minutes`), or whose last try
timed out as that time ran out, ends the run as TIME_LIMIT, or raises AttemptTimeout when `attempt_minutes`
ran out first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent_runner.core.errors import (
    ContextExceededError,
    ModelAuthError,
    ModelError,
    ModelFatalError,
    ModelNotFoundError,
    ModelUnavailableError,
    ToolError,
)
from agent_runner.core.messages import Message, ModelTurn, Role, ToolCall, ToolResult, Usage
from agent_runner.core.protocols import Model, PricedModel, Tool
from agent_runner.core.result import ExitStatus
from agent_runner.core.task import Limits
from agent_runner.models.deadline import MIN_TIMEOUT_S, DeadlineError, DeadlineModel
from agent_runner.tools import FINISH, FINISH_SPEC
from agent_runner.worker.context import ContextConfig, elide_old_outputs, estimate_tokens, max_prompt_tokens
from agent_runner.worker.deadline import AttemptTimeout
from agent_runner.worker.limits import AttemptDeadline, limit_hit, time_cut_off
from agent_runner.worker.trajectory import TrajectoryWriter

FINISH_ACK = "Recorded. The runner now checks your work with its gates."
NOT_RUN = "Not run: finish was called before it."


class AgentConfig(ContextConfig):
    """Limits and knobs of the loop."""

    model_config = ConfigDict(extra="forbid")
    limits: Limits = Field(
        default_factory=Limits, description="Hard limits: steps, cost_usd, minutes, tokens."
    )
    max_format_errors: int = Field(
        default=3, ge=1, description="Consecutive unusable replies before stopping."
    )
    stuck_repeats: int = Field(
        default=3, ge=2, description="Same call with the same output this often in a row."
    )


class AgentOutcome(BaseModel):
    """How a run (or a resumed run) ended, with cumulative counts."""

    model_config = ConfigDict(frozen=True)
    exit_status: ExitStatus
    summary: str = ""
    steps: int = 0
    model_calls: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    error: str = ""
    seconds: float = 0.0


class _Stop(Exception):
    """Control flow: the run ends with `status` (not an error)."""

    def __init__(self, status: ExitStatus, *, summary: str = "", error: str = "") -> None:
        super().__init__(status)
        self.status, self.summary, self.error = status, summary, error


class Agent:
    """Drives one model with a set of tools over one transcript; `resume` continues it."""

    def __init__(
        self,
        model: Model,
        tools: Mapping[str, Tool],
        *,
        config: AgentConfig,
        system: str,
        trajectory: TrajectoryWriter | None = None,
        attempt_deadline: AttemptDeadline | None = None,
        pause_check: Callable[[], str | None] | None = None,
    ) -> None:
        self.model, self.tools, self.config, self.system = model, dict(tools), config, system
        self.trajectory, self.attempt_deadline = trajectory, attempt_deadline
        self.pause_check = pause_check  # why the coordinator asks it to stop now (worker/pause.py), or None
        self.specs = [tool.spec for tool in self.tools.values()] + [FINISH_SPEC]
        self.messages: list[Message] = []
        self.usage = Usage()
        self.cost: float | None = 0.0  # None once any call's cost is unknown
        self.n_steps = self.n_model_calls = 0
        self._seconds = 0.0
        self._started = 0.0  # time.monotonic() when the current run or resume began
        self._minutes_at: float | None = None  # time.monotonic() when `minutes` runs out
        self._attempt_at: float | None = None  # ... and `attempt_minutes`
        self._last_context = 0
        self._counted: tuple[int, int] | None = None  # (messages before the last call, its tokens in and out)
        self._n_format_errors = 0
        self._recent: deque[tuple[str, str]] = deque(maxlen=config.stuck_repeats)
        self._cancelled = threading.Event()

    # -- public API -------------------------------------------------------------------------------------
    def run(self, task_message: str) -> AgentOutcome:
        """Start the transcript with `task_message` and loop until the agent stops."""
        if self.messages:
            raise RuntimeError("Agent.run was already called; use resume() to continue the transcript")
        self._record(
            "start",
            model=self.model.spec,
            system=self.system,
            tools=[spec.model_dump() for spec in self.specs],
            limits=self.config.limits.model_dump(),
        )
        self._add_user(task_message)
        return self._loop()

    def resume(self, message: str) -> AgentOutcome:
        """Continue the same transcript with `message` (e.g. a gate report); budgets stay cumulative."""
        if not self.messages:
            raise RuntimeError("Agent.resume needs a transcript; call run() first")
        self._add_user(message)
        self._n_format_errors = 0
        self._recent.clear()
        return self._loop()

    def cancel(self) -> None:
        """Ask the loop to stop before its next model call (thread-safe)."""
        self._cancelled.set()

    # -- the loop ---------------------------------------------------------------------------------------
    def _loop(self) -> AgentOutcome:
        started = self._started = time.monotonic()
        self._set_deadlines(started)
        try:
            stop = self._steps(started)
        except ModelError as exc:
            self._record("aborted", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._seconds += time.monotonic() - started
        outcome = AgentOutcome(
            exit_status=stop.status,
            summary=stop.summary,
            steps=self.n_steps,
            model_calls=self.n_model_calls,
            usage=self.usage,
            cost_usd=self.cost,
            error=stop.error,
            seconds=round(self._seconds, 3),
        )
        self._record("end", **outcome.model_dump(mode="json"))
        return outcome

    def _steps(self, started: float) -> _Stop:
        try:
            while True:
                self._check_limits(started)
                self._elide_if_needed()
                self._act(self._query())
        except _Stop as stop:
            return stop

    def _check_limits(self, started: float) -> None:
        if self._cancelled.is_set():
            raise _Stop(ExitStatus.CANCELLED, error="cancelled")
        if self.pause_check is not None and (reason := self.pause_check()):
            raise _Stop(ExitStatus.PAUSED, error=reason)
        elapsed = self._seconds + time.monotonic() - started
        hit = limit_hit(
            self.config.limits, n_calls=self.n_model_calls, tokens=self.usage.total, cost=self.cost,
            elapsed_s=elapsed, next_call_bound=self._next_call_bound,
        )  # fmt: skip
        if hit is not None:
            raise _Stop(hit.status, error=hit.error)
        if self._attempt_at is not None and self.attempt_deadline and time.monotonic() >= self._attempt_at:
            raise AttemptTimeout(self.attempt_deadline.minutes)

    def _next_call_bound(self) -> float | None:
        """Return the most the next call can cost: the last call's prompt and reply as the API counted
        them, plus a token a byte for what was added since (None: the model cannot price it)."""
        if not isinstance(self.model, PricedModel):
            return None
        if self._counted is None:
            tokens = max_prompt_tokens(self.system, self.messages, self.specs)
        else:
            n_before, n_tokens = self._counted  # messages[n_before] is that call's reply: in n_tokens
            tokens = n_tokens + max_prompt_tokens("", self.messages[n_before + 1 :])
        return self.model.max_call_cost(tokens)

    def _query(self) -> ModelTurn:
        began = time.monotonic()
        try:
            turn = self.model.query(self.system, self.messages, self.specs)
        except (ModelAuthError, ModelNotFoundError):
            raise
        except DeadlineError as exc:
            raise self._out_of_time() from exc
        except ContextExceededError as exc:
            raise _Stop(ExitStatus.CONTEXT_EXCEEDED, error=str(exc)) from exc
        except ModelFatalError as exc:
            raise _Stop(ExitStatus.MODEL_ERROR, error=str(exc)) from exc
        except ModelUnavailableError as exc:
            if self._is_time_up():  # the last try timed out at the deadline (no retry left): not an outage
                raise self._out_of_time() from exc
            raise
        self.n_model_calls += 1
        self._counted = (len(self.messages), turn.usage.total)
        self.usage += turn.usage
        self.cost = None if self.cost is None or turn.cost_usd is None else self.cost + turn.cost_usd
        self._last_context = turn.usage.total
        self._record(
            "model",
            step=self.n_model_calls,
            message=turn.message.model_dump(mode="json"),
            usage=turn.usage.model_dump(),
            cost_usd=turn.cost_usd,
            stop_reason=turn.stop_reason,
            format_error=turn.format_error,
            seconds=round(time.monotonic() - began, 3),
        )
        return turn

    def _act(self, turn: ModelTurn) -> None:
        message = turn.message
        problem = turn.format_error or self._unknown_tools(message.tool_calls)
        if problem:
            self._format_error(message, problem)
            return
        self._n_format_errors = 0
        self.messages.append(message)
        self.n_steps += 1
        if not message.tool_calls:
            raise _Stop(ExitStatus.FINISHED, summary=message.text)
        summary = self._run_calls(message.tool_calls)
        if summary is not None:
            raise _Stop(ExitStatus.FINISHED, summary=summary)
        if len(self._recent) == self._recent.maxlen and len(set(self._recent)) == 1:
            name = self._recent[0][0].split(" ", 1)[0]
            raise _Stop(
                ExitStatus.STUCK,
                error=f"stuck: the same {name} call gave the same output {len(self._recent)} times",
            )

    # -- tool calls -------------------------------------------------------------------------------------
    def _run_calls(self, calls: list[ToolCall]) -> str | None:
        """Run `calls` in order and append one result per call; return the summary if finish was called."""
        results, records, summary = [], [], None
        for call in calls:
            began = time.monotonic()
            if summary is not None:
                result = ToolResult(call_id=call.id, content=NOT_RUN, is_error=True)
            elif call.name == FINISH:
                summary = str(call.arguments.get("summary", ""))
                result = ToolResult(call_id=call.id, content=FINISH_ACK)
            else:
                result = self._run_tool(call)
            results.append(result)
            seconds = round(time.monotonic() - began, 3)
            records.append({**result.model_dump(), "name": call.name, "seconds": seconds})
        self.messages.append(Message(role=Role.USER, tool_results=results))
        self._record("tools", step=self.n_model_calls, results=records)
        return summary

    def _run_tool(self, call: ToolCall) -> ToolResult:
        try:
            content, is_error = self.tools[call.name].run(dict(call.arguments)), False
        except ToolError as exc:
            content, is_error = f"Error: {exc}", True
        key = f"{call.name} {json.dumps(call.arguments, sort_keys=True, default=str)}"
        self._recent.append((key, content))
        return ToolResult(call_id=call.id, content=content, is_error=is_error)

    def _unknown_tools(self, calls: list[ToolCall]) -> str | None:
        unknown = [call.name for call in calls if call.name != FINISH and call.name not in self.tools]
        if not unknown:
            return None
        return f"unknown tool {unknown[0]!r}; the tools are: {', '.join(spec.name for spec in self.specs)}"

    def _format_error(self, message: Message, problem: str) -> None:
        """Answer an unusable reply with the problem, keeping every call answered; stop after too many."""
        self._n_format_errors += 1
        if not message.text and not message.tool_calls:
            message = message.model_copy(update={"text": "(empty reply)"})
        self.messages.append(message)
        note = f"Your last reply could not be used: {problem}. Reply with tool calls; call finish when done."
        results = [ToolResult(call_id=call.id, content=note, is_error=True) for call in message.tool_calls]
        self.messages.append(Message(role=Role.USER, text="" if results else note, tool_results=results))
        if self._n_format_errors >= self.config.max_format_errors:
            raise _Stop(
                ExitStatus.FORMAT_ERRORS,
                error=f"{self._n_format_errors} unusable replies in a row: {problem}",
            )

    # -- transcript -------------------------------------------------------------------------------------
    def _add_user(self, text: str) -> None:
        """Append user text; merged into a trailing user message so roles keep alternating."""
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == Role.USER:
            merged = f"{last.text}\n\n{text}" if last.text else text
            self.messages[-1] = last.model_copy(update={"text": merged})
        else:
            self.messages.append(Message.user(text))
        self._record("user", text=text)

    def _elide_if_needed(self) -> None:
        size = max(self._last_context, estimate_tokens(self.system, self.messages))
        if size <= self.config.context_tokens:
            return
        self.messages, n_elided = elide_old_outputs(self.messages, self.config, size=size)
        if n_elided:
            self._record("elided", n_results=n_elided, context_tokens=size)

    def _set_deadlines(self, started: float) -> None:
        """Cut tool timeouts (bash) and model calls, retries included, to the time left under `minutes`
        and the attempt's `attempt_minutes`."""
        minutes, attempt = self.config.limits.minutes, self.attempt_deadline
        self._minutes_at = None if minutes is None else started + minutes * 60 - self._seconds
        self._attempt_at = None if attempt is None else started + attempt.ends_at - time.time()
        deadline = min((at for at in (self._minutes_at, self._attempt_at) if at is not None), default=None)
        for tool in self.tools.values():
            if hasattr(tool, "deadline"):
                tool.deadline = deadline
        if isinstance(self.model, DeadlineModel):
            self.model.set_deadline(deadline)

    def _is_time_up(self) -> bool:
        """Return whether `minutes` or `attempt_minutes` has run out."""
        deadlines = [at for at in (self._minutes_at, self._attempt_at) if at is not None]
        return bool(deadlines) and time.monotonic() >= min(deadlines) - MIN_TIMEOUT_S

    def _out_of_time(self) -> BaseException:
        """Return how a model call cut off at the deadline ends the run: the limit that ran out first."""
        attempt_at, minutes_at = self._attempt_at, self._minutes_at
        if (
            self.attempt_deadline
            and attempt_at is not None
            and (minutes_at is None or attempt_at < minutes_at)
        ):
            return AttemptTimeout(self.attempt_deadline.minutes)
        hit = time_cut_off(self.config.limits, self._seconds + time.monotonic() - self._started)
        return _Stop(hit.status, error=hit.error)

    def _record(self, record_type: str, **fields: Any) -> None:
        if self.trajectory is not None:
            self.trajectory.write(record_type, **fields)
