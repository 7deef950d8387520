"""Records that cross the worker boundary: the work request, gate results and the task result."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent_runner.core.messages import Usage
from agent_runner.core.redact import Redactor
from agent_runner.core.task import Task, model_spec_for
from agent_runner.core.verify import VerifySpec


class ExitStatus(StrEnum):
    """How an agent run ended (control flow, not errors)."""

    FINISHED = "finished"
    STEP_LIMIT = "step_limit"
    COST_LIMIT = "cost_limit"
    TOKEN_LIMIT = "token_limit"
    TIME_LIMIT = "time_limit"
    FORMAT_ERRORS = "format_errors"
    STUCK = "stuck"
    CONTEXT_EXCEEDED = "context_exceeded"
    MODEL_ERROR = "model_error"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # the coordinator asked it to stop before its next model call (a run's budget)


class Outcome(StrEnum):
    """What the scheduler does with a result."""

    ACCEPTED = "accepted"  # gates green: publish, task finished
    REJECTED = "rejected"  # task failure: spends an attempt
    INFRA = "infra"  # infrastructure failure: re-queue, no attempt spent
    MODEL_AUTH = "model_auth"  # the model cannot be used (bad key, unusable spec): stop dispatching to it
    PAUSED = "paused"  # stopped at a model call as the coordinator asked: re-queue, no attempt spent


LIMIT_OF_EXIT = {
    "step_limit": "steps", "cost_limit": "cost_usd", "token_limit": "tokens", "time_limit": "minutes",
}  # fmt: skip


class GateVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class GateResult(BaseModel):
    """One gate's measurement: command, exit code, counts before and after, verdict."""

    model_config = ConfigDict(frozen=True)
    name: str
    verdict: GateVerdict
    command: str = ""
    exit_code: int | None = None
    before: dict[str, float] = Field(default_factory=dict)
    after: dict[str, float] = Field(default_factory=dict)
    details: str = ""
    offending: list[str] = Field(default_factory=list)


class Severity(StrEnum):
    BLOCKING = "blocking"
    MAJOR = "major"
    MINOR = "minor"
    NIT = "nit"


class Finding(BaseModel):
    """One review finding on a line of a diff."""

    model_config = ConfigDict(frozen=True)
    file: str
    line: int | None = None
    severity: Severity = Severity.MINOR
    explanation: str


class WorkRequest(BaseModel):
    """What a worker needs to run one attempt of a task (sent as JSON to `run-agents exec`)."""

    model_config = ConfigDict(extra="forbid")
    task: Task
    attempt: int = Field(default=1, ge=1)
    repo: str = Field(description="Source repo: a local path or a git URL the worker can fetch.")
    base: str | None = Field(default=None, description="Base branch name.")
    base_commit: str | None = Field(
        default=None, description="Exact base commit, when the coordinator knows it."
    )
    model: str | None = Field(default=None, description="Model spec overriding the task's and config's.")
    repo_bundle_b64: str | None = Field(
        default=None, description="The source repo as a bundle, for workers that cannot fetch."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="The runner config, as the coordinator resolved it."
    )
    secrets: dict[str, str] = Field(
        default_factory=dict, repr=False, description="Model keys, never put in env."
    )
    worker: str = Field(default="local", description="Name of the worker slot or machine.")
    verify: VerifySpec | None = Field(
        default=None, description="A verify-only job (no agent): check these commits' gates (core/verify.py)."
    )

    @property
    def model_spec(self) -> str:
        """The model the attempt runs: the request's, else the task's, else the config's ("" if none)."""
        return model_spec_for(self.task, override=self.model, default=str(self.config.get("model") or ""))


class TaskResult(BaseModel):
    """The outcome of one attempt, as the worker prints it and the queue stores it."""

    model_config = ConfigDict(extra="ignore")
    task_id: str
    attempt: int = 1
    outcome: Outcome
    exit_status: ExitStatus | None = None
    reason: str = ""
    summary: str = ""
    gates: list[GateResult] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    verdict: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None  # None: unknown, some model call had no price (see core/cost.py)
    steps: int = 0
    model_calls: int = 0
    duration_s: float = 0.0
    model: str | None = None
    base_commit: str | None = None
    head_commit: str | None = None
    branch: str | None = None
    bundle_path: str | None = None
    bundle_b64: str | None = Field(default=None, repr=False)
    trajectory_path: str | None = None
    checkout_path: str | None = None
    machine: str | None = None
    sandbox: str | None = None  # what confined the agent: "bwrap" or "none"; None: unknown (older results)
    pr_url: str | None = None
    started_at: float | None = None
    # Which limit ended the attempt (steps, cost_usd, tokens, minutes, attempt_minutes, max_disk_mb, disk);
    # None: none did.
    limit: str | None = None
    # Why the machine that ran it should take no more attempts this run (its disk is full); None: it can.
    machine_problem: str | None = None
    # The attempt's spend could not be read back (a remote worker died with its trajectory): cost unknown.
    spend_unknown: bool = False

    @model_validator(mode="after")
    def _no_call_costs_nothing(self) -> TaskResult:
        """An attempt that made no model call spent a known $0 (None would read as unknown)."""
        if self.cost_usd is None and not (self.model_calls or self.steps or self.spend_unknown):
            self.cost_usd = 0.0
        return self

    def redacted(self, redactor: Redactor) -> TaskResult:
        """Return a copy with secrets masked in every text field (the bundle is git data: kept as it is)."""
        data = redactor.obj(self.model_dump(mode="json", exclude={"bundle_b64"}))
        return TaskResult.model_validate({**data, "bundle_b64": self.bundle_b64})

    def for_queue(self) -> dict[str, Any]:
        """Return the record as stored in the queue file (without the inline bundle)."""
        record = self.model_dump(mode="json", exclude={"bundle_b64"}, exclude_none=True)
        return {**record, "cost_usd": self.cost_usd}  # null says unknown; a missing field is an older record


def sandbox_note(sandbox: str | None, *, machine: str | None = None) -> str:
    """Return one line saying what confined the agent's commands; a loud warning when nothing did."""
    if sandbox == "none":
        where = f"the machine `{machine}`" if machine else "its machine"
        return f"⚠ The agent ran without a sandbox: its commands had the runner's full access on {where}."
    return f"sandbox: {sandbox or 'unknown'}"
