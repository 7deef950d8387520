"""End to end: a scripted agent in a real attempt (source repo, state folder inside it, bwrap sandbox)
reads nothing of the runner's or the host's home, and still runs its tools in its checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.config.runner import load_config
from agent_runner.core.result import Outcome, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.testing.scripts import ScriptedTasks, bash_turn, finish_turn
from agent_runner.worker.job import run_job
from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)
GIT = ("git", "-c", "user.name=t", "-c", "user.email=t@t")
PYPROJECT = '[tool.agent-runner]\nsandbox = "bwrap"\ntest = "true"\n'
TOOLS = (
    "python -c 'print(\"python ran\")' && ruff --version && git --version && git status --short "
    "&& python -m pytest -q -p no:cacheprovider test_calc.py "
    '&& echo home > "$HOME/h.txt" && echo tmp > /tmp/t.txt && cat "$HOME/h.txt" /tmp/t.txt'
)


class Project(ScriptedTasks):
    """A source repo (one test committed; untracked .env and queue file) and a host home, outside /tmp."""

    def __init__(self, base: Path) -> None:
        self.root, self.host_home = base / "repo", base / "host-home"
        self.tasks, self.scripts = self.root / "tasks", base / "scripts"
        self.secrets = {
            "NPM-SECRET": self.host_home / ".npmrc",
            "HISTORY-SECRET": self.host_home / ".bash_history",
            "CLAUDE-SECRET": self.host_home / ".claude" / "x",
            "QUEUE-SECRET": self.tasks / "queue.jsonl",
            "REPO-SECRET": self.root / ".env",
            "OTHER-CHECKOUT-SECRET": self.root / ".agent-runner" / "checkouts" / "other-1" / "calc.py",
            "OTHER-RUN-SECRET": self.root / ".agent-runner" / "runs" / "other" / "1" / "trajectory.jsonl",
        }

    def create(self) -> None:
        """Write and commit the repo, then plant the secrets."""
        (self.root / "pyproject.toml").parent.mkdir(parents=True)
        (self.root / "pyproject.toml").write_text(PYPROJECT)
        (self.root / "test_calc.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        (self.root / ".gitignore").write_text(".env\ntasks/\n.agent-runner/\n")
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
            subprocess.run(
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=self.root, check=True
            )
        for text, path in self.secrets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def request(self, task_id: str) -> WorkRequest:
        """Return the work request for tasks/<task_id>.md."""
        settings = load_config(self.root).model_dump(mode="json", by_alias=True)
        task = load_task_file(self.tasks / f"{task_id}.md")
        return WorkRequest(task=task, repo=str(self.root), config=settings)


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A project under /var/tmp (the sandbox's /tmp is private anyway, which would hide a leak)."""
    base = Path(tempfile.mkdtemp(prefix="agent-runner-attempt-", dir="/var/tmp"))
    project = Project(base)
    project.create()
    monkeypatch.setenv("HOME", str(project.host_home))
    yield project
    shutil.rmtree(base, ignore_errors=True)


def tool_outputs(trajectory: Path) -> str:
    """Return every string the trajectory holds (the bash tool's outputs among them), one per line."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for line in trajectory.read_text().splitlines():
        walk(json.loads(line))
    return "\n".join(found)


def test_agent_sees_only_its_checkout_home_and_tools(project: Project) -> None:
    """The agent's bash reads or lists no planted file; python, ruff, git, pytest, HOME and /tmp work."""
    paths = " ".join(str(path) for path in project.secrets.values())
    probe = f"cat {paths} 2>&1; find {project.root} {project.host_home} -type f 2>&1 | sort; echo listed"
    turns = [bash_turn(probe), bash_turn(TOOLS), bash_turn("echo done > probe.txt"), finish_turn()]
    project.task("probe", project.script("probe", turns))
    result = run_job(project.request("probe"), workdir=project.root / ".agent-runner")
    assert result.outcome == Outcome.ACCEPTED, result.reason
    out = tool_outputs(Path(result.trajectory_path or ""))
    assert [text for text in project.secrets if text in out] == [], out
    checkout = project.root / ".agent-runner" / "checkouts" / "probe-1"
    listed = [Path(line) for line in out.splitlines() if line.startswith(str(project.root.parent))]
    shown = (checkout, checkout.with_name("probe-1.git") / "objects")  # the agent's .git borrows objects
    assert checkout / "test_calc.py" in listed, listed
    assert all(any(p.is_relative_to(s) for s in shown) for p in listed), listed
    for seen in ("python ran", "ruff ", "git version", "1 passed", "home\ntmp"):
        assert seen in out, out
