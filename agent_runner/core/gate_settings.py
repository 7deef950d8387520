"""The settings gates read: the [tool.agent-runner.gates] table and the runner settings a job's gates need.

    GatesConfig      the [tool.agent-runner.gates] table (thresholds and limits); its defaults live here only
    GateSettings     GatesConfig plus the allow list, the override switch, setup, copy, tasks_dir and the
                     withheld variable names: GateContext.settings, built by config.runner.gate_settings

Both are plain data: a GateSettings is part of the baseline cache key (gates/baseline.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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


class GateSettings(GatesConfig):
    """What a job's gates read (GateContext.settings): the gate limits and the runner settings they need."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allow: tuple[str, ...] = Field(default=(), description="Anti-gaming exceptions tasks may request.")
    allow_gate_override: bool = Field(default=False, description="Task files may relax gates.")
    setup: tuple[str, ...] = Field(default=(), description="Setup commands (part of the baseline cache key).")
    copy_files: tuple[str, ...] = Field(
        default=(), alias="copy", description="Untracked files copied in (part of the baseline cache key)."
    )
    tasks_dir: str = Field(
        default="tasks", description="The runner's own input: a diff may not touch it (diff.check_runner)."
    )
    withheld_env: tuple[str, ...] = Field(
        default=(), description="Secrets and model keys: never in the environment of the agent's code."
    )
