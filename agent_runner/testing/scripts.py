"""Building scripted-model sessions for tests, benchmarks and demos: turns, and script files."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def bash_turn(command: str, *, delay_s: float = 0.0, text: str = "run") -> dict[str, Any]:
    """Return a scripted turn that runs one bash command (after `delay_s`)."""
    return {
        "text": text,
        "delay_s": delay_s,
        "tool_calls": [{"name": "bash", "arguments": {"command": command}}],
    }


def finish_turn(summary: str = "done") -> dict[str, Any]:
    """Return a scripted turn that calls `finish`."""
    return {"text": "done", "tool_calls": [{"name": "finish", "arguments": {"summary": summary}}]}


def write_command(filename: str, content: str) -> str:
    """Return a shell command that writes `content` to `filename` (base64, so any text survives quoting)."""
    encoded = base64.b64encode(content.encode()).decode()
    return f"echo {encoded} | base64 -d > {filename}"


def write_script(folder: Path, name: str, turns: list[dict[str, Any]]) -> str:
    """Write `folder/<name>.yaml` holding `turns` and return its `scripted:` model spec."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"turns": turns}), encoding="utf-8")
    return f"scripted:{path}"
