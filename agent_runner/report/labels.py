"""Short, true labels for the report: the model an attempt used, a script's file name rather than its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RECORDED_SCRIPTS = Path(__file__).parents[1] / "demo"  # the demo's recorded sessions, replayed without a key
SCRIPT_SUFFIXES = (".yaml", ".yml", ".json")
RUFF_ONLY = "none: ruff only"
NO_CALL = "none: no model call"


def model_label(spec: str) -> str:
    """Return a short name for a model spec: `scripted:<file name>`, `recorded:<file name>` for the demo's."""
    head, sep, tail = spec.rpartition(":")
    if not sep or "/" not in tail or not tail.endswith(SCRIPT_SUFFIXES):
        return spec
    path = Path(tail)
    if head == "scripted" and path.parent == RECORDED_SCRIPTS:
        return f"recorded:{path.name}"
    return f"{head}:{path.name}"


def is_recorded(spec: str) -> bool:
    """Whether a spec replays one of the demo's recorded sessions (its cost was recorded, not billed)."""
    return model_label(spec).startswith("recorded:")


def model_used(result: dict[str, Any] | None, *, kind: str, planned: str) -> str:
    """Return the label of the model an attempt used: none when its result made no model call.

    A fix-lint attempt that `ruff --fix` finished alone says so; an attempt without a result (still running,
    lost) shows the model it was given.
    """
    if result is not None and _made_no_call(result):
        return RUFF_ONLY if kind == "fix-lint" and result.get("outcome") == "accepted" else NO_CALL
    spec = str((result or {}).get("model") or planned)
    return model_label(spec) if spec else ""


def _made_no_call(result: dict[str, Any]) -> bool:
    """A result with no model call, no agent step and no cost (older results may lack `model_calls`)."""
    return result.get("model_calls") == 0 and not result.get("steps") and not result.get("cost_usd")
