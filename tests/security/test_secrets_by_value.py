"""Secrets by value end to end: values without a key's shape, echoed by the agent, reach no output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_runner.testing.fake_github import FakeGitHub
from agent_runner.testing.scripts import ScriptedTasks, bash_turn, finish_turn

GITHUB_TOKEN = "plainvalue1234567890"
MODEL_KEY = "plainmodelkey0987654321"  # no sk- prefix: only its value gives it away
DB_URL = "postgres://runner:opensesame42@db"  # a secret only because the config's secret_env names it
SECRETS = {"GITHUB_TOKEN": GITHUB_TOKEN, "ANTHROPIC_API_KEY": MODEL_KEY, "DB_URL": DB_URL}
PYPROJECT = """\
[tool.agent-runner]
sandbox = "none"
test = "true"
lease_seconds = 5
heartbeat_seconds = 0.5
backoff_seconds = 0
workers = 2
secret_env = ["DB_URL"]
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip
ECHO_ALL = bash_turn(f"echo {' '.join(SECRETS.values())}; echo $GITHUB_TOKEN $ANTHROPIC_API_KEY $DB_URL")


def git(repo: Path, *args: str) -> None:
    """Run git in `repo` with a fixed identity."""
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


class Project(ScriptedTasks):
    """A source repo with tasks/ and a bare origin, driven through the real CLI with the secrets set."""

    def __init__(self, base: Path) -> None:
        self.root, self.origin = base / "repo", base / "origin.git"
        self.tasks, self.scripts = self.root / "tasks", base / "scripts"
        self.tasks.mkdir(parents=True)
        (self.root / "calc.py").write_text("def add(a, b):\n    return a + b\n", encoding="utf-8")
        (self.root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
        git(base, "init", "-q", "--bare", "-b", "main", str(self.origin))
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"]):
            git(self.root, *args)
        git(self.root, "remote", "add", "origin", str(self.origin))
        git(self.root, "push", "-q", "origin", "main")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `run-agents --root <repo> args...` with the secrets and a home of its own."""
        argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(self.root), *args]
        own = ("AGENT_RUNNER_", "OPENAI_", "GH_")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(own)}
        env = {**inherited, **GIT_ENV, **SECRETS, "AGENT_RUNNER_HOME": str(self.root.parent / "home")}
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.root, env=env)


@dataclass
class Run:
    """One `run --json` of a leaky task (writes the values into a file) and an echoing one (does not)."""

    project: Project
    out: subprocess.CompletedProcess[str]
    pr_bodies: list[str]

    def ended(self, task_id: str) -> dict[str, object]:
        """Return the task's last finished or failed event of the run's output."""
        events = [json.loads(line) for line in self.out.stdout.splitlines() if line.startswith("{")]
        ends = [e for e in events if e.get("task") == task_id and e.get("event") in ("finished", "failed")]
        assert ends, self.out.stdout + self.out.stderr
        return ends[-1]


def _leaks(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run both tasks against a fake GitHub, once for this module's tests; the echoing one is published."""
    project = Project(tmp_path_factory.mktemp("secrets"))
    leaky = [ECHO_ALL, bash_turn(f"echo 'TOKENS = \"{GITHUB_TOKEN} {MODEL_KEY}\"' > settings.py")]
    echoer = [ECHO_ALL, bash_turn("echo 'x = 1' > harmless.py")]
    for name, turns in (("leaky", leaky), ("echoer", echoer)):
        model = project.script(name, [*turns, finish_turn(f"saw {GITHUB_TOKEN}, {MODEL_KEY} and {DB_URL}")])
        title = f"Echo what it sees ({DB_URL})"  # a title is the user's text, but it goes public in the PR
        project.task(name, model, max_attempts=1, reflection_rounds=0, title=title)
    with FakeGitHub(origin=project.origin) as fake:
        (project.root / "pyproject.toml").write_text(
            PYPROJECT + f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\n'
            f'repository = "{fake.full_name}"\nrequest_interval_s = 0\nwrite_interval_s = 0\n'
        )
        out = project.cli("run", "--json")
        bodies = [f"{pull.get('title')}\n{pull.get('body')}" for pull in fake.store.pulls.values()]
    return Run(project, out, bodies)


def test_trajectories_results_queue_prs_and_show_hold_no_secret_value(run: Run) -> None:
    """trajectory.jsonl, result.json, worker.log, the queue, PR titles and bodies, run and `show` output."""
    assert run.ended("echoer")["event"] == "finished" and run.pr_bodies, run.out.stdout + run.out.stderr
    runs = run.project.root / ".agent-runner" / "runs"
    files = [p for p in runs.glob("*/1/*") if p.name in ("trajectory.jsonl", "result.json", "worker.log")]
    assert len([p for p in files if p.name == "trajectory.jsonl"]) == 2, files
    shown = {task: run.project.cli("show", task, "--trajectory") for task in ("leaky", "echoer")}
    assert all(out.returncode == 0 and "[REDACTED]" in out.stdout for out in shown.values()), shown
    queue = (run.project.tasks / "queue.jsonl").read_text(encoding="utf-8").splitlines()
    texts = {
        **{str(p.relative_to(runs)): p.read_text(encoding="utf-8") for p in files},
        "queue": "\n".join(line for line in queue if '"type":"queued"' not in line),  # those are task files
        "run output": run.out.stdout + run.out.stderr,
        **{f"show {task}": out.stdout + out.stderr for task, out in shown.items()},
        **{f"PR body {n}": body for n, body in enumerate(run.pr_bodies)},
    }
    assert {name: _leaks(text) for name, text in texts.items() if _leaks(text)} == {}


def test_a_diff_holding_a_secret_value_is_rejected(run: Run) -> None:
    """The file holding the values would land on the branch: the diff policy rejects the task instead."""
    ended = run.ended("leaky")
    assert ended["event"] == "failed", ended
    assert "[secret-values] settings.py:1" in str(ended["message"])
    assert not _leaks(str(ended["message"]))
