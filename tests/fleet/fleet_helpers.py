"""Helpers for the fleet tests: a coordinator repo configured for the SSH executor over namespace machines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from agent_runner.testing.netns import NetnsFleet
from agent_runner.testing.scripts import bash_turn, finish_turn, write_script

RUN_AGENTS = str(Path(sys.executable).parent / "run-agents")


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its output."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def machine_toml(name: str, **extra: Any) -> str:
    """Return a [[tool.agent-runner.machines]] entry with fast loss detection."""
    fields = {"name": name, "ssh": name, "workers": 1, "command": RUN_AGENTS, "connect_timeout_s": 2,
              "alive_interval_s": 1, "alive_count": 2, **extra}  # fmt: skip
    body = "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    return f"\n[[tool.agent-runner.machines]]\n{body}"


class FleetProject:
    """A coordinator repo (origin: a bare repo) configured for the SSH executor over a namespace fleet."""

    def __init__(self, root: Path, fleet: NetnsFleet) -> None:
        self.root = root
        self.fleet = fleet
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"

    def configure(self, machines: dict[str, dict[str, Any]], **settings: Any) -> None:
        """Write pyproject.toml with the runner settings and the machines, and commit it."""
        base = {"sandbox": "none", "test": "true", "lease_seconds": 30, "heartbeat_seconds": 0.5,
                "backoff_seconds": 0, "executor": "ssh", **settings}  # fmt: skip
        text = "[tool.agent-runner]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in base.items())
        text += f'\n[tool.agent-runner.ssh]\nconfig_file = "{self.fleet.ssh_config}"\nrecheck_s = 1\n'
        text += "".join(machine_toml(name, **extra) for name, extra in machines.items())
        (self.root / "pyproject.toml").write_text(text, encoding="utf-8")
        git(self.root, "add", "-A")
        git(self.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "config")
        git(self.root, "push", "-q", "origin", "main")

    def script(self, name: str, turns: list[dict[str, Any]]) -> str:
        """Write a scripted-model file (readable from every machine) and return its model spec."""
        return write_script(self.scripts, name, turns)

    def edit_script(self, name: str, filename: str, content: str, *, delay_s: float = 0.0) -> str:
        """Return a model spec whose agent writes `content` to `filename` (after `delay_s`), then finishes."""
        command = f"printf '%s' {json.dumps(content)} > {filename}; echo host=$(hostname -I)"
        turns = [bash_turn(command, delay_s=delay_s, text="edit"), finish_turn(f"wrote {filename}")]
        return self.script(name, turns)

    def task(self, task_id: str, model: str, **fields: Any) -> Path:
        """Write tasks/<id>.md (kind change) with the given model and front matter."""
        front = yaml.safe_dump({"kind": "change", "model": model, **fields}, sort_keys=False)
        path = self.tasks / f"{task_id}.md"
        path.write_text(f"---\n{front}---\nDo the chore.\n", encoding="utf-8")
        return path

    def queue_events(self) -> list[dict[str, Any]]:
        """Return every event in the queue file."""
        path = self.tasks / "queue.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` as a real subprocess."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)
