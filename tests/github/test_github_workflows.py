"""Workflow files: actionlint and zizmor pass, templates match the repo copies, `init --github` works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.workflows import WORKFLOWS, install_workflows, pinned_spec, template

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "agent_runner" / "workflows"
ALL_FILES = sorted([*(REPO / ".github" / "workflows").glob("*.yml"), *TEMPLATES.glob("*.yml")])


def tool(name: str) -> str:
    """Return the path of a linter installed beside this Python (the dev extra), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; pip install -e '.[dev]'")
    return found


def test_there_are_workflows_to_check() -> None:
    """The repo's CI and the four agent workflows exist, as templates and as this repo's copies."""
    names = {p.name for p in ALL_FILES}
    assert {"ci.yml", *WORKFLOWS} <= names and len(ALL_FILES) == 9


def test_actionlint_passes() -> None:
    """actionlint finds no problem in any workflow file."""
    proc = subprocess.run([tool("actionlint"), *map(str, ALL_FILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_offline_passes() -> None:
    """zizmor's security audits (offline) find nothing in any workflow file."""
    proc = subprocess.run([tool("zizmor"), "--offline", *map(str, ALL_FILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", WORKFLOWS)
def test_repo_copy_matches_template_except_install_line(name: str) -> None:
    """This repo's workflows are the shipped templates installing from the checkout ('.')."""
    ours = (REPO / ".github" / "workflows" / name).read_text()
    assert ours == template(name).replace("AGENT_RUNNER_PIP: agent-runner", 'AGENT_RUNNER_PIP: "."')


@pytest.mark.parametrize("name", WORKFLOWS)
def test_least_privilege_and_timeouts(name: str) -> None:
    """Top-level permissions are empty, every job names its own and has a timeout; no pull_request_target."""
    data = yaml.safe_load(template(name))
    assert data["permissions"] == {} and "pull_request_target" not in data[True]
    for job_name, job in data["jobs"].items():
        assert "timeout-minutes" in job and "permissions" in job, job_name
    work = data["jobs"].get("work")
    if work is not None:
        assert work["permissions"] == {"contents": "read"}


def test_publish_never_targets_main() -> None:
    """The publish job writes only through `ingest --state-branch` (agent/* branches and the state branch)."""
    steps = yaml.safe_load(template("run-agents.yml"))["jobs"]["publish"]["steps"]
    commands = [s["run"] for s in steps if "run" in s]
    assert any("ingest results --state-branch" in c for c in commands)
    assert not any("git push" in c for c in commands)


def test_init_github_writes_the_agent_workflows(tmp_path: Path) -> None:
    """`run-agents init --github` installs the workflows and keeps a file the user changed."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "agent-review.yml").write_text("# mine\n")
    result = CliRunner().invoke(get_app(), ["--root", str(tmp_path), "init", "--github"])
    assert result.exit_code == 0, result.output
    pinned = template("run-agents.yml").replace("PIP: agent-runner", f'PIP: "{pinned_spec()}"')
    assert (folder / "run-agents.yml").read_text() == pinned
    assert (folder / "agent-review.yml").read_text() == "# mine\n"
    assert [p.name for p in install_workflows(tmp_path)] == [] and "==" in pinned_spec()


def test_a_push_to_an_agent_branch_starts_no_run() -> None:
    """run-agents.yml starts on pushes of task files, never from agent/* branches: a run there would read
    the task files and config of a branch the agent wrote."""
    push = yaml.safe_load(template("run-agents.yml"))[True]["push"]
    assert push["branches-ignore"] == ["agent/**"] and "branches" not in push
