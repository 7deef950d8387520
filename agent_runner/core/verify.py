"""A verify-only job: no agent; the gates of a combination of results, run by a worker like any attempt.

The coordinator makes the commits (results applied onto the integration head, by git alone) and sends
them in a bundle, in a request whose task is named for the job (its run folder and checkout are its
own, never an attempt's); the worker checks out the head, measures the gates' baseline there, moves the work
tree to the last of the commits and runs the gates. It runs code agents wrote (the tests), so it runs
where attempts run: in a worker, in the attempt's sandbox, never on the coordinator's host.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

VERIFY_BRANCH = "agent/verify"  # the one ref a verify bundle carries
MAX_VERIFY_COMMITS = 256


class VerifySpec(BaseModel):
    """What a verify job checks: `head`, whose commits since the request's base come in `bundle_b64`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    head: str = Field(pattern="^[0-9a-f]{40}([0-9a-f]{24})?$", description="The commit to verify.")
    n_commits: int = Field(default=1, ge=1, le=MAX_VERIFY_COMMITS, description="Commits from base to head.")
    bundle_b64: str | None = Field(
        default=None, repr=False, description="The commits base..head as a bundle (ref agent/verify)."
    )
