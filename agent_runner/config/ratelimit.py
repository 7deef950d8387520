"""Settings of rate-limit-aware dispatch: `[tool.agent-runner.rate_limits]` (coordinator/ratelimit.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RateLimitConfig(BaseModel):
    """How the coordinator adapts the attempts in flight per provider and key to the answers it gets."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(default=True, description="Adapt dispatch to rate-limit answers at all.")
    start: int | None = Field(
        default=None, ge=1, description="Attempts in flight per provider and key at the start (None: as "
        "many as there are workers, until the first rate-limit answer).",
    )  # fmt: skip
    minimum: int = Field(default=1, ge=1, description="The limit is never lowered below this.")
    maximum: int | None = Field(default=None, ge=1, description="Never more attempts in flight than this.")
    decrease: float = Field(
        default=0.7, gt=0, lt=1, description="On a rate-limit answer the limit becomes this share of the "
        "attempts in flight (rounded, and at least one less).",
    )  # fmt: skip
    lower_every_s: float = Field(
        default=5.0, ge=0, description="Lower the limit at most once in this many seconds: one burst of "
        "answers counts once.",
    )  # fmt: skip
    raise_every_s: float = Field(
        default=5.0, gt=0, description="Allow one more attempt in flight after this many seconds without "
        "a rate-limit answer (while the limit is in use).",
    )  # fmt: skip
    max_wait_s: float = Field(
        default=300.0, ge=0, description="Honour a retry-after or a quota reset up to this many seconds.",
    )  # fmt: skip
    max_requeues: int = Field(
        default=30, ge=0, description="A task re-queued this many times in a run on rate limits (no attempt "
        "spent) is then failed like any unavailable model: counted, retried with backoff, failed in the end; "
        "a provider answering 429 forever (an exhausted quota) does not hold the run forever.",
    )  # fmt: skip
