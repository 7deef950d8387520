"""Fault-suite helpers: a real source repo with a bare origin, task and script writers, CLI runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runner.testing.scripts import ScriptedTasks, finish_turn

PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 3
heartbeat_seconds = 0.5
backoff_seconds = 0
workers = 2
keep_checkouts = "failed"
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip


@dataclass
class Scenario:
    """What one fault scenario reports: its name and outcome (set by the test as it learns it)."""

    name: str
    outcome: str = "not reached"


def git(repo: Path, *args: str, check: bool = True) -> str:
    """Run git in `repo` and return its stdout, stripped."""
    out = subprocess.run(["git", *args], cwd=repo, check=check, capture_output=True, text=True)
    return out.stdout.strip()


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


finish_call = finish_turn  # the fault scenarios' name for it


class Project(ScriptedTasks):
    """A source repo (calc.py, tasks/) whose `origin` is a local bare repo, with helpers to drive the CLI."""

    def __init__(self, root: Path, origin: Path) -> None:
        self.root = root
        self.origin = origin
        self.tasks = root / "tasks"
        self.scripts = root.parent / "scripts"
        self.queue_file = self.tasks / "queue.jsonl"
        self.state = root / ".agent-runner"

    @classmethod
    def create(cls, base: Path, *, pyproject: str = PYPROJECT) -> Project:
        """Create the repo and its bare origin under `base`."""
        origin = base / "origin.git"
        git(base, "init", "-q", "--bare", "-b", "main", str(origin))
        root = base / "repo"
        (root / "tasks").mkdir(parents=True)
        (root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        git(root, "init", "-q", "-b", "main")
        git(root, "remote", "add", "origin", str(origin))
        git(root, "add", "-A")
        git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
        git(root, "push", "-q", "origin", "main")
        return cls(root, origin)

    def configure(self, extra: str) -> None:
        """Set `key = value` lines in [tool.agent-runner] (replacing the key), or append a `[table]` block."""
        path = self.root / "pyproject.toml"
        lines = path.read_text(encoding="utf-8").splitlines()
        if extra.startswith("["):
            lines.append(extra)
        else:
            for new in extra.strip().splitlines():
                key = new.split("=")[0].strip()
                lines = [line for line in lines if line.split("=")[0].strip() != key]
                lines.insert(lines.index("[tool.agent-runner]") + 1, new)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def events(self) -> list[dict[str, Any]]:
        """Return every complete event line of the queue file."""
        if not self.queue_file.exists():
            return []
        lines = self.queue_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def argv(self, *args: str) -> list[str]:
        """Return the command line of `run-agents --root <repo> args...`."""
        return [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]

    def cli(
        self, *args: str, timeout: float = 90, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI as a real subprocess and return its completed process."""
        environ = {**os.environ, **GIT_ENV, **(env or {})}
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env=environ,
            **kwargs,
        )

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the CLI as a background subprocess (stdout and stderr to files under the state dir)."""
        environ = {**os.environ, **GIT_ENV, **(env or {})}
        logs = self.root.parent / "coordinator-logs"
        logs.mkdir(exist_ok=True)
        n = len(list(logs.iterdir()))
        out = open(logs / f"{n:03d}.out", "wb")  # noqa: SIM115 - closed with the process by the caller's wait
        return subprocess.Popen(
            self.argv(*args), cwd=self.root, env=environ, stdout=out, stderr=subprocess.STDOUT
        )


def json_events(stdout: str) -> list[dict[str, Any]]:
    """Return the JSON lines of a `run --json` output."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def task_types(events: list[dict[str, Any]], task_id: str) -> list[str]:
    """Return the queue event types of one task, in order."""
    return [e["type"] for e in events if e.get("task") == task_id]


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of `size` ("8m") at `mount`, a disk to fill; skip where mounting is not permitted."""
    mount.mkdir(exist_ok=True)
    argv = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)]
    done = subprocess.run(argv, capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
