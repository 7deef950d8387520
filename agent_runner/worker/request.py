"""The runner config a work request carries: sent as JSON (`WorkRequest.config`), read here once per use."""

from __future__ import annotations

from agent_runner.config.runner import RunnerConfig, config_from_dict
from agent_runner.core.result import WorkRequest


def request_config(request: WorkRequest) -> RunnerConfig:
    """Return the runner config `request` carries (the defaults when it carries none)."""
    return config_from_dict(request.config) if request.config else RunnerConfig()
