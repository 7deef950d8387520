"""The PR body and `run-agents show` say which sandbox the agent ran in, loudly when it ran in none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from github_helpers import git, make_result, make_task
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.github.body import render_body
from agent_runner.testing.fake_github import FakeGitHub
from agent_runner.testing.scripts import bash_turn, finish_turn, write_command, write_script
from agent_runner.worker.sandbox import probe_bwrap

WARNING = "⚠ The agent ran without a sandbox: its commands had the runner's full access on"
BWRAP = shutil.which("bwrap")
BWRAP_USABLE = BWRAP is not None and probe_bwrap(BWRAP) is None
TASK = "---\nkind: change\ntitle: Add sub\npaths: [app.py]\n---\nAdd sub to app.py.\n"
NEW_APP = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def test_body_warns_near_the_top_when_the_agent_ran_unconfined() -> None:
    """sandbox "none": a warning block before the task, naming the machine; the figures say none."""
    body = render_body(make_task(), make_result("0" * 40, sandbox="none", machine="runner-7"))
    assert f"> {WARNING} the machine `runner-7`." in body and "> [!WARNING]" in body
    assert body.index(WARNING) < body.index("### Task") and "- sandbox: none" in body


@pytest.mark.parametrize(("sandbox", "line"), [("bwrap", "- sandbox: bwrap"), (None, "- sandbox: unknown")])
def test_body_names_the_sandbox_without_warning(sandbox: str | None, line: str) -> None:
    """sandbox "bwrap" is named in the figures; a result without the field says "unknown"; no warning."""
    body = render_body(make_task(), make_result("0" * 40, sandbox=sandbox))
    assert line in body and "without a sandbox" not in body and "[!WARNING]" not in body


@pytest.fixture
def github_env(fake: FakeGitHub) -> dict[str, str]:
    """The publish job's environment: a token and the fake API."""
    config = {"api_url": fake.base_url, "repository": fake.full_name, "request_interval_s": 0,
              "write_interval_s": 0}  # fmt: skip
    return {**os.environ, "GITHUB_TOKEN": "t", "AGENT_RUNNER_GITHUB": json.dumps(config)}


def work_job(source: Path, env: dict[str, str], results: Path) -> dict[str, object]:
    """What the work job does: `exec` the task in a subprocess, keep its result JSON and bundle."""
    turns = [bash_turn(write_command("app.py", NEW_APP)), finish_turn("added sub")]
    spec = write_script(source.parent / "scripts", "edit-app", turns)
    argv = [sys.executable, "-m", "agent_runner.cli", "exec", "tasks/edit-app.md", "--json", "--model", spec]
    home = {"AGENT_RUNNER_HOME": str(source.parent / "runner-home")}
    proc = subprocess.run(argv, cwd=source, env={**env, **home}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    folder = results / "result-edit-app"
    folder.mkdir(parents=True)
    (folder / "edit-app.json").write_text(proc.stdout)
    shutil.copy(str(result["bundle_path"]), folder / "edit-app.bundle")
    return result


@pytest.mark.parametrize(
    "mode",
    ["none", pytest.param("bwrap", marks=pytest.mark.skipif(not BWRAP_USABLE, reason="no usable bwrap"))],
)
def test_exec_then_ingest_carries_the_sandbox_to_the_queue_pr_and_show(
    source: Path, fake: FakeGitHub, github_env: dict[str, str], tmp_path: Path, mode: str
) -> None:
    """exec records the sandbox; ingest keeps it in the queue; the PR body and `show` warn only for none."""
    (source / "tasks").mkdir()
    (source / "tasks" / "edit-app.md").write_text(TASK)
    (source / "pyproject.toml").write_text(f'[tool.agent-runner]\nsandbox = "{mode}"\ntest = "true"\n')
    (source / ".gitignore").write_text(".agent-runner/\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "task")
    git(source, "push", "-q", "origin", "main")
    assert work_job(source, github_env, tmp_path / "results")["sandbox"] == mode
    runner, root = CliRunner(), ["--root", str(source)]
    ingest = runner.invoke(get_app(), [*root, "ingest", str(tmp_path / "results"), "--json"], env=github_env)
    assert ingest.exit_code == 0, ingest.output
    assert json.loads(ingest.stdout)[0]["status"] == "finished"
    (pull,) = fake.store.pulls.values()
    assert f"- sandbox: {mode}" in pull["body"] and (WARNING in pull["body"]) == (mode == "none")
    shown = runner.invoke(get_app(), [*root, "show", "edit-app", "--json"], env=github_env)
    assert json.loads(shown.stdout)["task"]["result"]["sandbox"] == mode
    shown = runner.invoke(get_app(), [*root, "show", "edit-app"], env=github_env)
    assert shown.exit_code == 0, shown.output
    assert (WARNING in shown.stdout) == (mode == "none") and (f"sandbox: {mode}" in shown.stdout) == (
        mode == "bwrap"
    )
