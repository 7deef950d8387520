"""The `[tool.agent-runner.github]` settings: apart, so reading a config imports nothing else of GitHub's."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PrMode(StrEnum):
    """How an integration train's results reach GitHub."""

    PER_TASK = "per-task"  # one PR per task, each marked with its merge order
    INTEGRATION = "integration"  # one PR for the integration branch: "N verified changes"


class GitHubConfig(BaseModel):
    """Where and how the runner publishes to GitHub and reviews pull requests."""

    model_config = ConfigDict(extra="forbid")
    api_url: str | None = Field(
        default=None,
        description="REST API base (GHE: https://HOST/api/v3); default: GITHUB_API_URL, else github.com.",
    )
    repository: str | None = Field(
        default=None, description="owner/name; default: parsed from the remote URL."
    )
    remote: str = Field(default="origin", description="The git remote branches are pushed to.")
    state_branch: str = Field(
        default="agent-runner/state", description="Branch the Actions queue file lives on."
    )
    labels: list[str] = Field(
        default_factory=lambda: ["agent-runner"], description="Labels on every agent PR."
    )
    pr_mode: PrMode = Field(
        default=PrMode.PER_TASK,
        description="After a train: per-task PRs marked with their merge order, or one integration PR.",
    )
    review_rounds: int = Field(default=2, ge=0, le=10, description="Review/fix rounds per PR at most.")
    review_chunk_chars: int = Field(
        default=40_000, ge=2_000, description="Diff characters per review model call."
    )
    body_max_chars: int = Field(default=60_000, ge=5_000, le=65_000, description="PR body length at most.")
    timeout_s: float = Field(default=30.0, gt=0, description="Seconds per GitHub API request.")
    request_interval_s: float = Field(
        default=0.25, ge=0, description="Pause between API requests (rate etiquette)."
    )
    write_interval_s: float = Field(
        default=1.0, ge=0, description="Pause between API writes (rate etiquette)."
    )
