"""The Actions workflow that runs `run-agents refresh` on a push to the default branch (parsed YAML)."""

from __future__ import annotations

from typing import Any

import yaml

from agent_runner.workflows import WORKFLOWS, template


def refresh_workflow() -> dict[Any, Any]:
    """The shipped agent-refresh.yml, parsed (YAML reads the key `on` as True)."""
    data = yaml.safe_load(template("agent-refresh.yml"))
    assert isinstance(data, dict)
    return data


def test_a_push_to_the_default_branch_runs_refresh_on_the_state_branch() -> None:
    """On push (never from agent/*, only the default branch passes the job's `if`) the job runs refresh."""
    data = refresh_workflow()
    assert "agent-refresh.yml" in WORKFLOWS
    assert data[True]["push"] == {"branches-ignore": ["agent/**"]} and "workflow_dispatch" in data[True]
    job = data["jobs"]["refresh"]
    assert "github.ref_name == github.event.repository.default_branch" in job["if"]
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert any(
        line.startswith("run-agents refresh --state-branch") for c in commands for line in c.splitlines()
    )
    assert not any("git push" in c for c in commands)


def test_refresh_holds_only_what_it_writes_and_runs_the_gates_sandboxed() -> None:
    """Write access for agent/* pushes and PR bodies only; the gates must run under bubblewrap."""
    data = refresh_workflow()
    job = data["jobs"]["refresh"]
    assert job["permissions"] == {"contents": "write", "pull-requests": "write", "issues": "read"}
    assert data["concurrency"]["group"] == yaml.safe_load(template("run-agents.yml"))["concurrency"]["group"]
    (step,) = [s for s in job["steps"] if "refresh" in s.get("run", "")]
    assert step["env"]["AGENT_RUNNER_SANDBOX"] == "bwrap"
    assert any("apt-get install -y -q bubblewrap" in s.get("run", "") for s in job["steps"])
    checkout = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
