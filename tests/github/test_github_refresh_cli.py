"""`run-agents refresh` end to end: a real verify job (a worker runs the gates), the fake GitHub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from github_helpers import agent_commit, git
from refresh_helpers import person_merges

from agent_runner.config.runner import load_config
from agent_runner.core.result import GateResult, GateVerdict, Outcome, TaskResult
from agent_runner.core.task import Task, TaskKind, TaskStatus
from agent_runner.github.publisher import GitHubPublisher
from agent_runner.github.sections import section
from agent_runner.queue.intake import open_queue
from agent_runner.testing.fake_github import FakeGitHub
from agent_runner.testing.scripts import ScriptedTasks

CHECKS = """\
import pathlib, runpy, sys

sys.path.insert(0, ".")
failed = []
for check in sorted(pathlib.Path("checks").glob("*.py")):
    try:
        runpy.run_path(str(check))
    except AssertionError as exc:
        failed.append(f"FAILED {check}: {exc}")
print("\\n".join(failed) or "all checks pass")
sys.exit(1 if failed else 0)
"""
GATES = [
    GateResult(name=n, verdict=GateVerdict.PASS)
    for n in ("non-empty-diff", "lint-touched", "tests", "diff-policy")
]


@pytest.fixture
def project(source: Path, fake: FakeGitHub, tmp_path: Path) -> Path:
    """The source repo with a check script as its test command and GitHub settings for the fake."""
    (source / "pyproject.toml").write_text(
        f'[tool.agent-runner]\nsandbox = "none"\ntest = "python run_checks.py"\n'
        f'queue = "{tmp_path / "queue.jsonl"}"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\nrepository = "{fake.full_name}"\n'
        "request_interval_s = 0\nwrite_interval_s = 0\n"
    )
    (source / "run_checks.py").write_text(CHECKS)
    (source / "limits.py").write_text("LIMIT = 10\n")
    (source / "checks").mkdir()
    (source / "checks" / "app_check.py").write_text("from app import add\n\nassert add(1, 2) == 3\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "checks")
    git(source, "push", "-q", "origin", "main")
    return source


def accepted(root: Path, env: dict[str, str], task_id: str, files: dict[str, str]) -> str:
    """Record `files` on agent/<id> as the task's accepted, published result; return its commit."""
    config = load_config(root)
    base = git(root, "rev-parse", "main").strip()
    head = agent_commit(root, f"agent/{task_id}", files)
    task = Task(id=task_id, kind=TaskKind.CHANGE, title=f"Change {task_id}")
    result = TaskResult(task_id=task_id, outcome=Outcome.ACCEPTED, base_commit=base, head_commit=head,
                        gates=GATES)  # fmt: skip
    queue = open_queue(root, config)
    queue.add(task)
    claim = queue.claim("w", lease_s=60, accept=lambda s: s.id == task_id)
    assert claim is not None
    queue.finish(task_id, claim.attempt, result.for_queue())
    queue.publish_event(
        task_id, pr_url=GitHubPublisher(config.github, environ=env).publish(task, result, root)
    )
    return head


def refresh(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `run-agents refresh --json` as a real subprocess."""
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(root), "refresh", "--json"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env={**os.environ, **env})


def test_refresh_command_reverifies_on_a_worker_and_updates_the_prs(
    project: Path, origin: Path, fake: FakeGitHub, token_env: dict[str, str]
) -> None:
    """After a person's merge, one PR is rebased and green again, one red with the new main is re-queued;
    run again, nothing moves and it says so."""
    accepted(project, token_env, "aa", {"aa.py": "A = 1\n"})
    accepted(
        project,
        token_env,
        "cc",
        {"checks/limit_check.py": 'from limits import LIMIT\n\nassert LIMIT < 15, "LIMIT too big"\n'},
    )
    main = person_merges(project, fake, {"limits.py": "LIMIT = 20\n"})
    proc = refresh(project, token_env)
    assert proc.returncode == 0, proc.stderr
    rows = {row["task"]: row for row in json.loads(proc.stdout)}
    assert (rows["aa"]["outcome"], rows["cc"]["outcome"]) == ("rebased", "requeued"), (
        proc.stdout + proc.stderr
    )
    assert "LIMIT too big" in rows["cc"]["reason"]
    new_aa = git(origin, "rev-parse", "refs/heads/agent/aa").strip()
    assert new_aa == rows["aa"]["head"] and git(origin, "rev-parse", f"{new_aa}^").strip() == main
    assert "| tests |" in (section(fake.store.pulls[1]["body"], "refresh") or "")
    states = open_queue(project, load_config(project)).refresh()
    assert (states["aa"].status, states["cc"].status) == (TaskStatus.FINISHED, TaskStatus.QUEUED)
    assert "LIMIT too big" in states["cc"].reason and states["cc"].spent == 0
    again = refresh(project, token_env)
    assert [(r["task"], r["outcome"]) for r in json.loads(again.stdout)] == [("aa", "unchanged")]


def test_run_land_publishes_the_integration_pr(
    project: Path, fake: FakeGitHub, token_env: dict[str, str], tmp_path: Path
) -> None:
    """`run --land` with a token and `pr_mode = "integration"` opens the one "verified changes" PR, as
    `land` does: the run's own train is published, not left for a second command."""
    with (project / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write('pr_mode = "integration"\n')
    tasks = ScriptedTasks.__new__(ScriptedTasks)
    tasks.tasks, tasks.scripts = project / "tasks", tmp_path / "scripts"
    tasks.tasks.mkdir(exist_ok=True)
    tasks.task("bb", tasks.edit_script("bb", "bb.py", "B = 2\n"), title="Add bb")
    argv = [sys.executable, "-m", "agent_runner.cli", "--root", str(project), "run", "--land", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env={**os.environ, **token_env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    titles = {pull["head"]["ref"]: pull["title"] for pull in fake.store.pulls.values()}
    assert "verified change" in titles.get("agent/integration", ""), titles
