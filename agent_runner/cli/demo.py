"""Commands: demo."""

from __future__ import annotations

from agent_runner.cli.app import app  # noqa: F401
