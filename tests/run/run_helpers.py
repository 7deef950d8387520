"""Helpers for the run area's tests: a real source repo with task files and scripted models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from agent_runner.testing.scripts import bash_turn, finish_turn, write_command, write_script

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 5
heartbeat_seconds = 0.5
backoff_seconds = 0
workers = 2
"""


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


class Project:
    """A source repo holding tasks/, with helpers to add tasks and scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"

    def script(self, name: str, turns: list[dict[str, Any]]) -> str:
        """Write a scripted-model file outside the repo and return its model spec."""
        return write_script(self.scripts, name, turns)

    def edit_script(self, name: str, filename: str, content: str, *, delay_s: float = 0.0) -> str:
        """Return a model spec whose agent writes `content` to `filename`, then finishes."""
        turns = [
            bash_turn(write_command(filename, content), delay_s=delay_s, text="edit"),
            finish_turn(f"wrote {filename}"),
        ]
        return self.script(name, turns)

    def task(self, task_id: str, model: str, *, body: str = "Do the chore.", **fields: Any) -> Path:
        """Write tasks/<id>.md with front matter `fields` and the given model."""
        front = yaml.safe_dump({"kind": "change", "model": model, **fields}, sort_keys=False)
        path = self.tasks / f"{task_id}.md"
        path.write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
        return path

    def queue_events(self) -> list[dict[str, Any]]:
        """Return every event in the queue file."""
        path = self.tasks / "queue.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def invoke(self, *args: str) -> Any:
        """Run `run-agents --root <repo> args...` in this process (typer's test runner): fast, same code."""
        from typer.testing import CliRunner

        from agent_runner.cli import get_app

        return CliRunner().invoke(get_app(), ["--root", str(self.root), *args])

    def cli(self, *args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` as a real subprocess."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root, **kwargs)
