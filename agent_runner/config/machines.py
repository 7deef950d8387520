"""SSH machines: their configuration (`[[tool.agent-runner.machines]]`), the transport's, and their status."""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class MachineConfig(BaseModel):
    """One machine of the SSH fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="Short name; tasks pin to it with `machine: <name>`.")
    ssh: str = Field(description="Anything your ssh client accepts: an ~/.ssh/config alias, user@host, ...")
    workers: int = Field(default=1, ge=1, le=64, description="Tasks this machine runs at once.")
    tags: list[str] = Field(default_factory=list, description="Tags a task may pin to instead of a name.")
    command: str = Field(default="run-agents", description="The run-agents command on the machine.")
    python: str | None = Field(
        default=None, description="Python on the machine with agent-runner (default: run-agents' own)."
    )
    workdir: str = Field(default="~/.agent-runner-worker", description="Folder on the machine for runs.")
    forward_env: list[str] | None = Field(
        default=None, description="Model key variables sent as secrets (default: the runner's forward_env)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Plain variables set for the worker there.")
    source: Literal["auto", "remote", "bundle"] = Field(
        default="auto",
        description="How the machine gets the repo: its remote URL, a bundle sent over ssh, or auto.",
    )
    repo_url: str | None = Field(default=None, description="URL the machine fetches (default: origin's URL).")
    fork_server: bool = Field(
        default=True,
        description="Fork attempts from a warm agent-runner process there instead of starting `command`.",
    )
    connect_timeout_s: int = Field(default=10, ge=1, description="ssh ConnectTimeout.")
    alive_interval_s: int = Field(default=5, ge=1, description="ssh ServerAliveInterval.")
    alive_count: int = Field(default=3, ge=1, description="ServerAliveCountMax; lost after interval x count.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"'{value}' is not a valid machine name; use letters, digits, '.', '_' and '-'")
        return value


class SshConfig(BaseModel):
    """Settings of the ssh client the SSH executor runs."""

    model_config = ConfigDict(extra="forbid")
    config_file: str | None = Field(default=None, description="ssh -F file (default: ~/.ssh/config).")
    control_persist_s: int = Field(
        default=600,
        ge=0,
        description="Idle life of the shared connections and of the machines' fork servers.",
    )
    recheck_s: float = Field(default=30.0, gt=0, description="Re-check a failed machine after this.")
    options: list[str] = Field(default_factory=list, description="Extra `-o Key=Value` options for ssh.")


def coordinator_version() -> str:
    """Return the agent-runner version installed here."""
    try:
        return importlib.metadata.version("agent-runner")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class MachineStatus:
    """What the last check of a machine found."""

    name: str
    target: str
    workers: int
    is_reachable: bool = False
    error: str = ""
    runner_version: str = ""
    git_version: str = ""
    python_version: str = ""
    n_running_there: int = 0
    n_busy: int = 0
    checked_at: float = 0.0
    fork_python: str = ""  # the interpreter there that runs the fork client; empty: plain `command`

    @property
    def free_slots(self) -> int:
        return max(0, self.workers - max(self.n_busy, self.n_running_there)) if self.is_reachable else 0

    @property
    def is_version_mismatch(self) -> bool:
        return self.is_reachable and self.runner_version != coordinator_version()


class RayConfig(BaseModel):
    """Where the Ray executor connects and what each task asks Ray for."""

    model_config = ConfigDict(extra="forbid")
    address: str | None = Field(default=None, description="Cluster: 'auto', 'ray://host:10001'; none: local.")
    workers: int = Field(default=4, ge=1, le=1024, description="Tasks in flight at once.")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs each task reserves on its node.")
    workdir: str = Field(default="~/.agent-runner-worker", description="State folder on each node.")
    env: dict[str, str] = Field(default_factory=dict, description="Plain variables set for the worker.")
    source: Literal["auto", "remote", "bundle"] = Field(default="auto", description="How nodes get the repo.")
    repo_url: str | None = Field(default=None, description="URL nodes fetch (default: origin's URL).")
    unschedulable_after_s: float = Field(
        default=60.0, gt=0, description="Give up on a pin no live node offers after this."
    )
