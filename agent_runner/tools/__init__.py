"""The agent's tools, exposed to the model as `bash`, `edit` and `finish` (the loop handles `finish`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from agent_runner.core.messages import ToolSpec
from agent_runner.core.protocols import Sandbox, Tool
from agent_runner.tools.edit import EditTool
from agent_runner.tools.shell import BashTool, tool_env

FINISH = "finish"
FINISH_SPEC = ToolSpec(
    name=FINISH,
    description=(
        "Say that you are done and stop. Give a short summary of what you changed and why. The runner then "
        "checks your work with its own gates; if they fail you get their report and can continue."
    ),
    parameters={
        "type": "object",
        "properties": {"summary": {"type": "string", "description": "What you changed and why, briefly."}},
        "required": ["summary"],
    },
)

__all__ = ["FINISH", "FINISH_SPEC", "BashTool", "EditTool", "make_tools", "tool_env"]


def make_tools(checkout: Path, *, env: Mapping[str, str], sandbox: Sandbox | None = None) -> dict[str, Tool]:
    """Return the tools that act on `checkout`, by name (`finish` is added by the loop)."""
    return {
        "bash": BashTool(checkout, env=env, sandbox=sandbox),
        "edit": EditTool(checkout),
    }
