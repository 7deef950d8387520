"""The `[tool.agent-runner.train]` settings: the integration train that lands accepted results as one set."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent_runner.core.task import BRANCH_PREFIX


class TrainConfig(BaseModel):
    """How `run-agents land` (and `run --land`) builds the integration branch."""

    model_config = ConfigDict(extra="forbid")
    branch: str = Field(
        default="agent/integration", description="The integration branch (under agent/) the train builds."
    )
    base: str | None = Field(
        default=None, description="The branch the train starts from; default: the repo's default branch."
    )
    at_end: bool = Field(default=False, description="Land at the end of every `run` (as `run --land`).")
    batch: int = Field(
        default=1, ge=1, le=64, description="Results verified together (one gate run; bisected when red). "
        "1: every commit of the integration branch is verified on its own.",
    )  # fmt: skip
    rounds: int = Field(
        default=2, ge=0, le=10, description="With `run --land`: times the tasks the train queued again are "
        "run and landed again before the run ends.",
    )  # fmt: skip

    @field_validator("branch")
    @classmethod
    def _under_agent(cls, value: str) -> str:
        if not value.startswith(BRANCH_PREFIX) or ".." in value or value.endswith("/"):
            raise ValueError(
                f"'{value}' is not allowed; the integration branch must be under {BRANCH_PREFIX}"
            )
        return value
