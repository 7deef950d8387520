"""How an attempt ends early: `JobFailed` inside the job; the outcome and reason of an error that ends it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent_runner.core.errors import (
    GitError,
    ModelAuthError,
    ModelNotFoundError,
    ModelSpecError,
    ModelUnavailableError,
    RunnerError,
    SetupError,
)
from agent_runner.core.result import LIMIT_OF_EXIT, ExitStatus, Outcome
from agent_runner.repo.workspace import BaseMissingError, SetupNetworkError
from agent_runner.worker import deadline
from agent_runner.worker.agent import AgentOutcome


@dataclass(frozen=True)
class Failure:
    """Why an attempt ended early: its outcome, the reason shown, and the limit or machine problem if any."""

    outcome: Outcome
    reason: str
    exit_status: ExitStatus | None = None
    limit: str | None = None
    machine_problem: str | None = None


class JobFailed(Exception):
    """Ends a job early with an outcome and a reason (control flow inside the worker)."""

    def __init__(
        self,
        outcome: Outcome,
        reason: str,
        exit_status: ExitStatus | None = None,
        *,
        limit: str | None = None,
        machine_problem: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.failure = Failure(outcome, reason, exit_status, limit, machine_problem)


ENDINGS = (deadline.AttemptTimeout, JobFailed, RunnerError, OSError)  # what ends an attempt with a result

# The first rule whose type matches wins: (error types, outcome, reason template). A model error no attempt
# can do better on is MODEL_AUTH; an OSError is the checkout or state folder vanishing or filling up.
_RULES: tuple[tuple[tuple[type[BaseException], ...], Outcome, str], ...] = (
    ((ModelAuthError, ModelNotFoundError, ModelSpecError), Outcome.MODEL_AUTH, "{exc}"),
    ((ModelUnavailableError,), Outcome.INFRA, "model unavailable: {exc}"),
    ((SetupNetworkError,), Outcome.INFRA, "setup failed on a network error: {exc}"),
    ((SetupError,), Outcome.REJECTED, "{exc}"),
    ((BaseMissingError,), Outcome.REJECTED, "{exc}"),
    ((GitError,), Outcome.INFRA, "git: {exc}"),
    ((RunnerError,), Outcome.REJECTED, "{name}: {exc}"),
    ((OSError,), Outcome.INFRA, "file system error under {workdir}: {exc}"),
)


def failure_of(exc: BaseException, *, minutes: float, workdir: Path) -> Failure:
    """Return how an attempt that `exc` (one of ENDINGS) ended fails; re-raise anything else."""
    if isinstance(exc, deadline.AttemptTimeout):
        return Failure(Outcome.REJECTED, deadline.timeout_reason(minutes), limit=deadline.ATTEMPT_LIMIT)
    if isinstance(exc, JobFailed):
        return exc.failure
    for types, outcome, template in _RULES:
        if isinstance(exc, types):
            return Failure(outcome, template.format(exc=exc, name=type(exc).__name__, workdir=workdir))
    raise exc


def agent_stopped(outcome: AgentOutcome) -> JobFailed:
    """Return the failure of an agent that stopped before it finished (a limit, a model error, stuck...)."""
    if outcome.exit_status == ExitStatus.PAUSED:  # asked by the coordinator: no attempt spent
        return JobFailed(Outcome.PAUSED, f"paused: {outcome.error}", ExitStatus.PAUSED)
    detail = f": {outcome.error}" if outcome.error else ""
    reason = f"agent stopped ({outcome.exit_status}){detail}"
    return JobFailed(
        Outcome.REJECTED, reason, outcome.exit_status, limit=LIMIT_OF_EXIT.get(outcome.exit_status)
    )
