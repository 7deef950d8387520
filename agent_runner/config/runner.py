"""Runner configuration: defaults < pyproject [tool.agent-runner] < AGENT_RUNNER_* env < flags."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent_runner.config.github import GitHubConfig
from agent_runner.config.machines import MachineConfig, RayConfig, SshConfig
from agent_runner.config.ratelimit import RateLimitConfig
from agent_runner.config.timebudget import parse_clock, parse_duration
from agent_runner.config.train import TrainConfig
from agent_runner.core.errors import ConfigError, validation_text
from agent_runner.core.gate_settings import GatesConfig, GateSettings
from agent_runner.core.task import Limits, TaskKind

ENV_PREFIX = "AGENT_RUNNER_"
COORDINATOR_ONLY = frozenset(
    {"run_for", "run_until", "rate_limits"}
)  # not sent to workers: a worker one release older
# refuses keys it does not know, and no worker reads these
DEFAULT_LIMITS: dict[str, Limits] = {
    TaskKind.FIX_LINT: Limits(steps=30, cost_usd=0.5, minutes=15),
    TaskKind.WRITE_TESTS: Limits(steps=50, cost_usd=1.0, minutes=25),
    TaskKind.CHANGE: Limits(steps=60, cost_usd=2.0, minutes=30),
    TaskKind.REVIEW: Limits(steps=20, cost_usd=0.5, minutes=10),
}


class ModelsConfig(BaseModel):
    """Where the model SDKs connect (None: the SDK's default or its *_BASE_URL variable)."""

    model_config = ConfigDict(extra="forbid")
    anthropic_base_url: str | None = Field(default=None, description="Anthropic API base URL, without /v1.")
    openai_base_url: str | None = Field(default=None, description="OpenAI-compatible base URL, with /v1.")
    max_tokens: int = Field(default=8192, ge=256, description="Output tokens per model call.")
    timeout_s: float = Field(
        default=300.0, gt=0, description="Seconds per model call before it counts as a hang."
    )
    max_retries: int = Field(default=4, ge=0, description="SDK retries for 429/5xx/connection errors.")
    context_tokens: int = Field(default=150_000, ge=1000, description="Elide old tool output past this.")


class RunnerConfig(BaseModel):
    """Everything the runner reads from pyproject, the environment and flags."""

    model_config = ConfigDict(extra="forbid")
    tasks_dir: str = Field(default="tasks", description="Folder of task files, relative to the repo root.")
    queue: str = Field(default="tasks/queue.jsonl", description="The central queue file.")
    state_dir: str = Field(default=".agent-runner", description="Runs, checkouts, caches and reports.")
    model: str = Field(default="anthropic:claude-sonnet-5-5", description="Default model spec.")
    review_model: str | None = Field(default=None, description="Model for PR reviews (default: model).")
    workers: int = Field(default=2, ge=1, le=256, description="Local parallel workers.")
    executor: Literal["local", "ssh", "ray"] = Field(default="local", description="Where workers run.")
    lease_seconds: float = Field(default=120.0, gt=0, description="A claim expires unless heartbeated.")
    heartbeat_seconds: float = Field(
        default=20.0, gt=0, description="How often running tasks are heartbeated."
    )
    infra_retries: int = Field(default=5, ge=0, description="Re-queues for infrastructure failures.")
    backoff_seconds: float = Field(default=5.0, ge=0, description="First infra back-off; doubles each time.")
    setup: list[str] = Field(
        default_factory=list, description="Commands run in each checkout before the agent."
    )
    copy_files: list[str] = Field(
        default_factory=list, alias="copy", description="Untracked files copied in."
    )
    test: str = Field(default="python -m pytest -q", description="The repo's test command.")
    keep_checkouts: Literal["failed", "always", "never"] = Field(default="failed", description="Keep which.")
    reflection_rounds: int = Field(default=3, ge=0, le=10, description="Gate feedback rounds per attempt.")
    sandbox: Literal["auto", "bwrap", "none"] = Field(default="auto", description="Agent shell sandbox.")
    network: bool = Field(default=False, description="Let the agent's shell use the network.")
    allow: list[str] = Field(default_factory=list, description="Anti-gaming exceptions tasks may request.")
    allow_gate_override: bool = Field(default=False, description="Let task files relax gates.")
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        description="A run's spend: reached, running attempts pause at their next model call.",
    )
    run_for: str | None = Field(
        default=None,
        description="A run's time budget (8h, 90m, 1h30m): no attempt starts that cannot end by then.",
    )
    run_until: str | None = Field(
        default=None,
        description="A run's end as a local time (07:00, the next one); with run_for, the earlier.",
    )
    forward_env: list[str] = Field(
        default_factory=lambda: ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"],
        description="Environment variables passed to workers as secrets (model keys only).",
    )
    secret_env: list[str] = Field(
        default_factory=list,
        description="Variables whose values are secrets, besides GITHUB_TOKEN, GH_TOKEN, the model keys and "
        "forward_env: masked by value in all the runner writes; a diff holding one is rejected.",
    )
    limits: dict[TaskKind, Limits] = Field(default_factory=dict, description="Per-kind limit overrides.")
    min_free_mb: float = Field(
        default=100, ge=0, description="Free disk a machine needs to start an attempt, in MB; below it the "
        "machine takes no more attempts this run and the task stays queued.",
    )  # fmt: skip
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    rate_limits: RateLimitConfig = Field(
        default_factory=RateLimitConfig, description="Dispatch that adapts to rate limits."
    )
    machines: list[MachineConfig] = Field(default_factory=list, description="The SSH fleet.")
    ssh: SshConfig = Field(default_factory=SshConfig, description="The ssh client of the SSH executor.")
    ray: RayConfig = Field(default_factory=RayConfig, description="The Ray executor.")
    github: GitHubConfig = Field(
        default_factory=GitHubConfig, description="Publishing, reviews, Actions state."
    )
    gates: GatesConfig = Field(default_factory=GatesConfig, description="Gate limits and thresholds.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="The integration train (`land`).")

    @field_validator("run_for")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("run_until")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value

    def limits_for(self, kind: TaskKind, task_limits: Limits | None = None) -> Limits:
        """Return the effective limits: kind defaults < config < task file."""
        merged = self.limits.get(kind, Limits()).merged_over(DEFAULT_LIMITS[kind])
        return task_limits.merged_over(merged) if task_limits else merged

    def path(self, root: Path, name: str) -> Path:
        """Resolve a configured relative path (tasks_dir, queue, state_dir) against the repo root."""
        return root / getattr(self, name)


def gate_settings(config: RunnerConfig) -> GateSettings:
    """Return GateContext.settings for a job: the gate limits, the allow list and what else gates read."""
    return GateSettings(
        **config.gates.model_dump(),
        allow=tuple(config.allow),
        allow_gate_override=config.allow_gate_override,
        setup=tuple(config.setup),
        copy=tuple(config.copy_files),
        tasks_dir=config.tasks_dir,
        withheld_env=tuple(sorted({*config.secret_env, *config.forward_env})),
    )


def read_pyproject(root: Path) -> dict[str, Any]:
    """Return the [tool.agent-runner] table of root/pyproject.toml (empty when absent)."""
    path = root / "pyproject.toml"
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the file and run again.") from exc
    table = data.get("tool", {}).get("agent-runner", {})
    return dict(table) if isinstance(table, dict) else {}


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return config fields from AGENT_RUNNER_<FIELD> variables (JSON values, else plain strings)."""
    fields: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}HOME":
            continue
        name = key[len(ENV_PREFIX) :].lower()
        try:
            fields[name] = json.loads(raw)
        except json.JSONDecodeError:
            fields[name] = raw
    return fields


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def load_config(
    root: Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> RunnerConfig:
    """Merge defaults, pyproject, environment and flag overrides into one validated config."""
    layers = read_pyproject(root)
    layers = _deep_merge(layers, {k.replace("-", "_"): v for k, v in layers.items()})
    layers = {k: v for k, v in layers.items() if "-" not in k}
    env = read_env(os.environ if environ is None else environ)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    layers = _deep_merge(_deep_merge(layers, env), flags)

    def source(field: str) -> str:  # the layer that set the field: it is the one to fix
        if field in flags:
            return f"--{field.replace('_', '-')}"
        if field in env:
            return f"{ENV_PREFIX}{field.upper()}"
        return f"{root / 'pyproject.toml'} [tool.agent-runner]"

    return config_from_dict(layers, source=source)


def config_from_dict(
    data: Mapping[str, Any], *, source: str | Callable[[str], str] = "config"
) -> RunnerConfig:
    """Validate a config mapping, raising ConfigError that names the field (and where it was set)."""
    try:
        return RunnerConfig.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        hint = ""
        if err["type"] == "extra_forbidden":
            hint = f"; known fields: {', '.join(sorted(RunnerConfig.model_fields))}"
        label = source(str(err["loc"][0]) if err["loc"] else "") if callable(source) else source
        raise ConfigError(f"{label}: '{where}': {validation_text(err)}{hint}") from exc


def find_root(start: Path | None = None) -> Path:
    """Return the folder holding tasks/ or pyproject.toml or .git, searching upward from `start`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / "tasks").is_dir():
            return folder
    return here
