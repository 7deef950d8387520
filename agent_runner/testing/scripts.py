"""Building scripted-model sessions for tests, benchmarks and demos: turns, and script files."""

from __future__ import annotations

import base64
import json
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


def probe_model_package(folder: Path, imports: Path) -> str:
    """Write package `probes` under `folder`: its model class is the scripted one, and importing its module
    appends the importing pid to `imports`. Return the spec prefix that replaces `scripted:`."""
    package = folder / "probes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(
        "import os\n"
        f"with open({str(imports)!r}, 'a') as fh:\n"
        "    fh.write(f'{os.getpid()}\\n')\n"
        "from agent_runner.models.scripted import ScriptedModel as Probe\n"
    )
    return "probes.model:Probe:"


def write_script(folder: Path, name: str, turns: list[dict[str, Any]]) -> str:
    """Write `folder/<name>.yaml` holding `turns` and return its `scripted:` model spec."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"turns": turns}), encoding="utf-8")
    return f"scripted:{path}"


class ScriptedTasks:
    """Task files and scripted-model files of a test project: its `tasks` and `scripts` folders."""

    tasks: Path
    scripts: Path

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
        """Write tasks/<id>.md (kind change unless `fields` say otherwise) with the given model."""
        front = yaml.safe_dump({"kind": "change", "model": model, **fields}, sort_keys=False)
        path = self.tasks / f"{task_id}.md"
        path.write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
        return path

    def queue_events(self) -> list[dict[str, Any]]:
        """Return every event in the queue file."""
        path = self.tasks / "queue.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
