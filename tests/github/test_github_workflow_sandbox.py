"""The work job installs bubblewrap before exec, holds no token, and its summary says which sandbox ran."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = [REPO / ".github/workflows/run-agents.yml", REPO / "agent_runner/workflows/run-agents.yml"]
MODEL_KEYS = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}
LOUD = "The agent ran WITHOUT a sandbox"


def job(path: Path, name: str) -> dict[str, Any]:
    """Return one job of a workflow file."""
    jobs: dict[str, Any] = yaml.safe_load(path.read_text())["jobs"]
    return jobs[name]


def step_index(steps: list[dict[str, Any]], needle: str) -> int:
    """Return the index of the first step whose `run` holds `needle`."""
    return next(i for i, step in enumerate(steps) if needle in step.get("run", ""))


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a step's script as the runner does (bash -eo pipefail) and return the finished process."""
    script = cwd / "step.sh"
    script.write_text(step["run"])
    argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
    env = {**os.environ, **env}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def fake_bin(folder: Path, *, has_switch: bool, bwrap_runs: bool) -> Path:
    """Write sudo, apt-get, sysctl and bwrap that log their calls to `folder/log`; return their folder."""
    log, bin_dir = folder / "log", folder / "bin"
    bin_dir.mkdir()
    scripts = {
        "sudo": '"$@"',
        "apt-get": "exit 0",
        "sysctl": f'[ "$1" != -n ] || exit {0 if has_switch else 255}',
        "bwrap": f"exit {0 if bwrap_runs else 1}",
    }
    for name, body in scripts.items():
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n{body}\n')
        (bin_dir / name).chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("has_switch", [True, False])
def test_work_job_installs_bubblewrap_before_exec(path: Path, tmp_path: Path, has_switch: bool) -> None:
    """Before `exec`, bubblewrap is installed and AppArmor's user-namespace switch is off where it exists."""
    steps = job(path, "work")["steps"]
    install = step_index(steps, "bubblewrap")
    assert install < step_index(steps, 'run-agents "${args[@]}"')
    bin_dir = fake_bin(tmp_path, has_switch=has_switch, bwrap_runs=True)
    proc = run_step(steps[install], tmp_path, {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "log").read_text().splitlines()
    assert "sudo apt-get install -y -q bubblewrap" in log and "::warning" not in proc.stdout
    switched = "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in log
    assert switched == has_switch  # an unknown key is an error for sysctl -w: only set where it exists
    assert log.index("sudo apt-get install -y -q bubblewrap") < log.index(
        next(line for line in log if line.startswith("bwrap "))
    )


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
def test_work_job_warns_when_bubblewrap_cannot_run(path: Path, tmp_path: Path) -> None:
    """A runner where bwrap fails gets an annotation up front; the job goes on (exec falls back, loudly)."""
    steps = job(path, "work")["steps"]
    bin_dir = fake_bin(tmp_path, has_switch=True, bwrap_runs=False)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = run_step(steps[step_index(steps, "bubblewrap")], tmp_path, env)
    assert proc.returncode == 0 and "::warning title=agent-runner::" in proc.stdout, proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
def test_work_job_holds_no_token_and_only_model_keys(path: Path) -> None:
    """Read-only contents, checkout keeps no credentials, and the model keys are its only secrets."""
    work = job(path, "work")
    assert work["permissions"] == {"contents": "read"}
    checkouts = [s for s in work["steps"] if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts and all(s["with"]["persist-credentials"] is False for s in checkouts)
    text = yaml.safe_dump(work)
    assert set(re.findall(r"secrets\.(\w+)", text)) == MODEL_KEYS
    assert "github.token" not in text and "GITHUB_TOKEN" not in text and "GH_TOKEN" not in text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
@pytest.mark.parametrize(
    ("result", "expected", "annotated"),
    [
        ({"task_id": "fix-app", "sandbox": "bwrap"}, "- `fix-app`: sandbox: bwrap", False),
        ({"task_id": "fix-app", "sandbox": "none"}, f"- `fix-app`: ⚠ **{LOUD}**", True),
        ({"task_id": "fix-app"}, "- `fix-app`: sandbox: unknown", False),
        (None, "- `fix-app`: sandbox: unknown (no result", False),
    ],
)
def test_work_job_summary_says_which_sandbox_ran(
    path: Path, tmp_path: Path, result: dict[str, str] | None, expected: str, annotated: bool
) -> None:
    """After exec (also when it failed), the job summary gets one line per task; "none" also warns."""
    steps = job(path, "work")["steps"]
    summary = step_index(steps, "GITHUB_STEP_SUMMARY")
    assert step_index(steps, 'run-agents "${args[@]}"') < summary and steps[summary]["if"] == "always()"
    (tmp_path / "out").mkdir()
    if result is not None:
        (tmp_path / "out" / "fix-app.json").write_text(json.dumps(result))
    summary_file = tmp_path / "summary.md"
    env = {"TASK_ID": "fix-app", "GITHUB_STEP_SUMMARY": str(summary_file)}
    proc = run_step(steps[summary], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert summary_file.read_text().startswith(expected)
    annotation = "::warning title=agent-runner::task fix-app: the agent ran WITHOUT a sandbox"
    assert (annotation in proc.stdout) == annotated


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.parent.name)
def test_publish_summary_lists_the_sandbox_of_each_result(path: Path, tmp_path: Path) -> None:
    """The publish job's summary names each downloaded result's sandbox, loudly for none, safely quoted."""
    steps = job(path, "publish")["steps"]
    report = steps[step_index(steps, "GITHUB_STEP_SUMMARY")]
    bin_dir = tmp_path / "bin"  # run-agents itself is tested elsewhere: here it prints nothing
    bin_dir.mkdir()
    (bin_dir / "run-agents").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "run-agents").chmod(0o755)
    records = {"a": {"task_id": "a", "sandbox": "bwrap"}, "b": {"task_id": "b", "sandbox": "none"},
               "c": {"task_id": "c`<x>", "outcome": "accepted"}}  # fmt: skip
    for name, record in records.items():
        (tmp_path / "results" / f"result-{name}").mkdir(parents=True)
        (tmp_path / "results" / f"result-{name}" / f"{name}.json").write_text(json.dumps(record))
    summary_file = tmp_path / "summary.md"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary_file)}
    proc = run_step(report, tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    lines = summary_file.read_text().splitlines()
    assert "- `a`: sandbox: bwrap" in lines and "- `c??x?`: sandbox: unknown" in lines
    assert "- `b`: ⚠ **the agent ran WITHOUT a sandbox** (full access to its runner)" in lines
