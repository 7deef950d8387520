"""Runner-run gates and job kinds: the runner, not the model, decides "done".

get_job_kind(kind) -> JobKind      template, commits, prestep(ctx) -> PreStep, gates(ctx) -> [Gate]
gate_settings(config) -> dict       GateContext.settings from the runner config
render_report(results) -> str       the gate table and offending lines, for prompts and PR bodies
"""

from __future__ import annotations

from agent_runner.errors import ConfigError
from agent_runner.gates.kinds import KINDS, JobKind, PreStep
from agent_runner.gates.report import failure_reason, is_accepted, render_report
from agent_runner.gates.settings import GatesConfig, gate_settings

__all__ = [
    "GatesConfig",
    "JobKind",
    "PreStep",
    "failure_reason",
    "gate_settings",
    "get_job_kind",
    "is_accepted",
    "render_report",
]


def get_job_kind(kind: str) -> JobKind:
    """Return a fresh JobKind for a task kind (fix-lint, write-tests, change, review)."""
    try:
        return KINDS[str(kind)]()
    except KeyError:
        raise ConfigError(f"unknown task kind '{kind}'; known kinds: {', '.join(KINDS)}") from None
