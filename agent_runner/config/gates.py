"""The runner settings gates read from GateContext.settings, and how to build them from the config."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from agent_runner.config.runner import RunnerConfig


class GatesConfig(BaseModel):
    """Gate thresholds and limits ([tool.agent-runner.gates])."""

    model_config = ConfigDict(extra="forbid")
    format: bool = Field(
        default=False, description="fix-lint: also run ruff format on the targets (or per task)."
    )
    max_file_bytes: int = Field(
        default=1_000_000, ge=1, description="Reject added or changed files over this size."
    )
    min_coverage_gain: float = Field(
        default=0.0,
        ge=0,
        description="write-tests: a floor under the task's min_coverage_gain (unless overridden).",
    )
    max_mutants: int = Field(default=8, ge=5, le=50, description="write-tests: mutants tried per check.")
    mutant_workers: int = Field(
        default=2, ge=1, le=16, description="write-tests: scratch copies run in parallel."
    )
    test_timeout_s: float = Field(
        default=1800.0, gt=0, description="Seconds one run of the test command may take."
    )
    baseline_cache: bool = Field(
        default=False,
        description="Reuse a test baseline measured on this machine for the same tree, commands, settings.",
    )
    baseline_cache_dir: str = Field(
        default="", description="Folder of the baseline cache ('' = ~/.cache/agent-runner/baselines)."
    )


def gate_settings(config: RunnerConfig, **extra: Any) -> dict[str, Any]:
    """Return GateContext.settings for a job: the config's allow list, override switch and gate limits."""
    gates = getattr(config, "gates", None) or GatesConfig()
    return {
        "allow": list(config.allow),
        "allow_gate_override": config.allow_gate_override,
        "setup": list(config.setup),  # part of the baseline cache key, with the copied files
        "copy": list(config.copy_files),
        "tasks_dir": config.tasks_dir,  # the runner's own input: a diff may not touch it (diff.check_runner)
        # Names of secrets and model keys: never in the environment of the agent's code (command.gate_env).
        "withheld_env": sorted({*getattr(config, "secret_env", ()), *getattr(config, "forward_env", ())}),
        **gates.model_dump(),
        **extra,
    }
