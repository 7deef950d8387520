"""Records of the integration train: accepted results applied one at a time onto one integration branch.

The train (coordinator) makes a `TrainRun`; GitHub publishing and the report read it. Each step says
what happened to one accepted result: landed with every earlier one in (the integration head after it),
or taken out of the train (a conflict, or gates red only in combination) and queued again with why.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from agent_runner.core.result import GateResult


class StepOutcome(StrEnum):
    """What the train did with one accepted result."""

    LANDED = "landed"  # applied and green with every earlier step in
    CONFLICT = "conflict"  # did not apply onto the integration head: queued again
    RED = "red"  # applied, but a gate failed with the earlier steps in: queued again


class TrainStep(BaseModel):
    """One accepted result's turn in the train."""

    model_config = ConfigDict(frozen=True)
    task_id: str
    attempt: int
    branch: str  # the task's own (verified) branch
    outcome: StepOutcome
    commit: str | None = None  # the integration head after this step; None unless landed
    reason: str = ""  # for conflict/red: the conflicting files or failing tests, given to the next attempt
    gates: list[GateResult] = Field(default_factory=list)  # the gates run with the earlier steps in


class TrainRun(BaseModel):
    """One train: a base, an integration branch and its steps in priority order."""

    model_config = ConfigDict(frozen=True)
    train_id: str
    branch: str  # the integration branch
    base: str  # the base branch name
    base_commit: str  # where the integration branch started
    head: str  # the integration branch's commit after the last landed step
    steps: list[TrainStep] = Field(default_factory=list)

    @property
    def landed(self) -> list[TrainStep]:
        """The steps on the integration branch, in merge order."""
        return [s for s in self.steps if s.outcome is StepOutcome.LANDED]

    @property
    def taken_out(self) -> list[TrainStep]:
        """The steps queued again, with their reasons."""
        return [s for s in self.steps if s.outcome is not StepOutcome.LANDED]
