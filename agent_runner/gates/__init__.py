"""Runner-run gates and job kinds: the runner, not the model, decides "done".

    get_job_kind(kind) -> JobKind      template, commits, prestep(ctx) -> PreStep, gates(ctx) -> [Gate]
    gate_settings(config) -> dict       GateContext.settings from the runner config
    render_report(results) -> str       the gate table and offending lines, for prompts and PR bodies

The gate modules load on first use (the config imports GatesConfig from here at every start).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent_runner.config.gates import GatesConfig, gate_settings
from agent_runner.core.errors import ConfigError

if TYPE_CHECKING:
    from agent_runner.gates.kinds import JobKind, PreStep
    from agent_runner.gates.report import brief, failure_reason, is_accepted, render_report

_LAZY = {
    "JobKind": "kinds",
    "PreStep": "kinds",
    "brief": "report",
    "failure_reason": "report",
    "is_accepted": "report",
    "render_report": "report",
}
__all__ = [
    "GatesConfig",
    "JobKind",
    "PreStep",
    "brief",
    "failure_reason",
    "gate_settings",
    "get_job_kind",
    "is_accepted",
    "render_report",
]


def get_job_kind(kind: str) -> JobKind:
    """Return a fresh JobKind for a task kind (fix-lint, write-tests, change, review)."""
    from agent_runner.gates.kinds import KINDS

    try:
        return KINDS[str(kind)]()
    except KeyError:
        raise ConfigError(f"unknown task kind '{kind}'; known kinds: {', '.join(KINDS)}") from None


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"agent_runner.gates.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'agent_runner.gates' has no attribute '{name}'")
