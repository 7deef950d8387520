"""The GitHub Actions jobs, run locally in sequence: plan --matrix -> exec per task -> ingest (FakeGitHub)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from github_helpers import git
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.testing.fake_github import FakeGitHub

RUN_AGENTS = [sys.executable, "-m", "agent_runner.cli"]
TASK = "---\nkind: fix-lint\ntitle: {title}\npaths: [app.py]\n---\n{body}\n"


def run_agents(cwd: Path, env: dict[str, str], *args: str) -> str:
    """Run a command as the workflow does and return stdout: `exec` in a subprocess, the rest in-process."""
    if args[0] == "exec":
        proc = subprocess.run(
            [*RUN_AGENTS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout
    result = CliRunner().invoke(get_app(), ["--root", str(cwd), *args], env=env)
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.stdout


@pytest.fixture
def repo(source: Path) -> Path:
    """The user's repo with two fix-lint tasks on the same file (so they must not run together)."""
    (source / "app.py").write_text("import os\nimport sys\n\n\ndef f():\n    return 1\n")
    (source / "tasks").mkdir()
    (source / "tasks" / "fix-app.md").write_text(
        TASK.format(title="Remove unused imports", body="Fix app.py.")
    )
    (source / "tasks" / "tidy-app.md").write_text(TASK.format(title="Same file", body="Also app.py."))
    (source / "pyproject.toml").write_text('[tool.agent-runner]\nsandbox = "none"\ntest = "true"\n')
    (source / ".gitignore").write_text(".agent-runner/\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "tasks")
    git(source, "push", "-q", "origin", "main")
    return source


@pytest.fixture
def env(fake: FakeGitHub, tmp_path: Path) -> dict[str, str]:
    """The environment of the publish job: a token and the fake API."""
    config = {
        "api_url": fake.base_url,
        "repository": fake.full_name,
        "request_interval_s": 0,
        "write_interval_s": 0,
    }
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps({"turns": [{"tool_calls": [{"name": "finish", "arguments": {"summary": "ok"}}]}]})
    )
    return {
        **os.environ,
        "GITHUB_TOKEN": "t",
        "AGENT_RUNNER_GITHUB": json.dumps(config),
        "SCRIPT": str(script),
    }


def work_job(repo: Path, env: dict[str, str], entry: dict[str, object], out: Path) -> None:
    """What one matrix job does on a fresh runner: exec the task, keep the result JSON, copy the bundle."""
    spec = f"scripted:{env['SCRIPT']}"
    args = ["exec", str(entry["file"]), "--json", "--attempt", str(entry["attempt"]), "--model", spec]
    home = out.parent / f"runner-home-{out.name}-{entry['id']}"  # nothing cached from earlier jobs
    text = run_agents(repo, {**env, "AGENT_RUNNER_HOME": str(home)}, *args)
    folder = out / f"result-{entry['id']}"
    folder.mkdir(parents=True)
    (folder / f"{entry['id']}.json").write_text(text)
    result = json.loads(text)
    if result.get("bundle_path"):
        shutil.copy(result["bundle_path"], folder / f"{entry['id']}.bundle")
    if result.get("trajectory_path"):
        shutil.copy(result["trajectory_path"], folder / f"{entry['id']}.trajectory.jsonl")


def test_plan_exec_ingest_publishes_and_records_on_state_branch(
    repo: Path, origin: Path, fake: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    """One task of an overlap group runs, its PR opens, the queue lands on the state branch; main kept."""
    main_before = git(origin, "rev-parse", "main")
    matrix = json.loads(run_agents(repo, env, "plan", "--matrix", "--state-branch"))
    assert [e["id"] for e in matrix["include"]] == ["fix-app"]  # tidy-app overlaps: it waits
    results = tmp_path / "results"
    for entry in matrix["include"]:
        work_job(repo, env, entry, results)
    rows = json.loads(run_agents(repo, env, "ingest", str(results), "--state-branch", "--json"))
    assert [(r["task"], r["status"]) for r in rows] == [("fix-app", "finished")]
    (pull,) = fake.store.pulls.values()
    assert pull["head"]["ref"] == "agent/fix-app" and pull["draft"] and "lint-targets" in pull["body"]
    assert "import os" not in git(origin, "show", "agent/fix-app:app.py")
    assert git(origin, "rev-parse", "main") == main_before
    events = [
        json.loads(line) for line in git(origin, "show", "agent-runner/state:tasks/queue.jsonl").splitlines()
    ]
    assert [e["type"] for e in events if e["task"] == "fix-app"][-2:] == ["finished", "published"]

    fresh = tmp_path / "fresh"  # the next workflow run: a new checkout that only knows the state branch
    subprocess.run(["git", "clone", "-q", str(origin), str(fresh)], check=True)
    again = json.loads(run_agents(fresh, env, "plan", "--matrix", "--state-branch"))
    assert [e["id"] for e in again["include"]] == ["tidy-app"]
    rows = json.loads(run_agents(fresh, env, "ingest", str(results), "--state-branch", "--json"))
    assert rows[0]["note"].startswith("already finished") and len(fake.store.pulls) == 1


def test_ingest_refuses_commits_git_would_not_receive(
    repo: Path, fake: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    """A result whose bundle plants a .git tree is a task failure (no retry loop), with no branch or PR."""
    matrix = json.loads(run_agents(repo, env, "plan", "--matrix"))
    results = tmp_path / "results"
    work_job(repo, env, matrix["include"][0], results)
    forger = tmp_path / "forger"  # what a lying worker could upload instead of its real bundle
    subprocess.run(["git", "clone", "-q", str(repo), str(forger)], check=True)

    def forge(*args: str, text: str | None = None) -> str:
        out = subprocess.run(["git", "-C", str(forger), "-c", "user.name=f", "-c", "user.email=f@f", *args],
                             input=text, check=True, capture_output=True, text=True)  # fmt: skip
        return out.stdout.strip()

    blob = forge("hash-object", "-w", "--stdin", text="x\n")
    inner = forge("mktree", text=f"100644 blob {blob}\tconfig\n")
    tree = forge("mktree", text=f"040000 tree {inner}\t.git\n")
    forge("branch", "agent/fix-app", forge("commit-tree", tree, "-p", "HEAD", "-m", "plant"))
    bundle = results / "result-fix-app" / "fix-app.bundle"
    forge("bundle", "create", "-q", str(bundle), "agent/fix-app", "^main")
    (row,) = json.loads(run_agents(repo, env, "ingest", str(results), "--json"))
    assert row["outcome"] == "rejected" and "git refused the commits" in row["note"], row
    assert row["status"] == "queued" and not fake.store.pulls  # one attempt spent, two left
    assert git(repo, "branch", "--list", "agent/*") == ""


def test_missing_token_leaves_task_unpublished_then_publish_retries(
    repo: Path, fake: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    """Without a token the result is recorded unpublished with the reason; `publish ID` later opens the PR."""
    matrix = json.loads(run_agents(repo, env, "plan", "--matrix"))
    work_job(repo, env, matrix["include"][0], tmp_path / "results")
    no_token = {k: v for k, v in env.items() if k not in ("GITHUB_TOKEN", "GH_TOKEN")}
    (row,) = json.loads(run_agents(repo, no_token, "ingest", str(tmp_path / "results"), "--json"))
    assert (
        row["status"] == "unpublished" and "GITHUB_TOKEN or GH_TOKEN" in row["note"] and not fake.store.pulls
    )
    listed = json.loads(run_agents(repo, env, "list", "--json"))
    assert any(t["id"] == "fix-app" and t["status"] == "unpublished" for t in listed)
    run_agents(repo, env, "publish", "fix-app")
    assert len(fake.store.pulls) == 1
    fake.set_check(fake.store.pulls[1]["head"]["sha"] or "0" * 40, conclusion="success")
    (pr,) = json.loads(run_agents(repo, env, "prs", "--json"))
    assert (pr["task"], pr["state"], pr["checks"], pr["review"], pr["mergeable"]) == (
        "fix-app",
        "draft",
        "success",
        "none",
        True,
    )


def test_review_fix_round_adds_commits_to_the_same_pr(
    repo: Path, origin: Path, fake: FakeGitHub, env: dict[str, str], tmp_path: Path
) -> None:
    """review --fix writes a task on agent/fix-app; running it pushes a commit on top and updates PR #1."""
    (repo / "tasks" / "tidy-app.md").unlink()
    results = tmp_path / "results"
    for entry in json.loads(run_agents(repo, env, "plan", "--matrix"))["include"]:
        work_job(repo, env, entry, results)
    run_agents(repo, env, "ingest", str(results))
    first_head = git(origin, "rev-parse", "agent/fix-app").strip()
    finding = {"file": "app.py", "line": 1, "severity": "blocking", "explanation": "f needs a docstring"}
    review = tmp_path / "review.json"
    summary = json.dumps({"verdict": "request_changes", "findings": [finding]})
    review.write_text(
        json.dumps({"turns": [{"tool_calls": [{"name": "finish", "arguments": {"summary": summary}}]}]})
    )
    run_agents(repo, env, "review", "1", "--fix", "--model", f"scripted:{review}")
    matrix = json.loads(run_agents(repo, env, "plan", "--matrix"))
    assert [e["id"] for e in matrix["include"]] == ["fix-app-fix1"]
    edit = 'sed -i \'s/def f():/def f():\\n    """Return one."""/\' app.py'
    turns = [{"tool_calls": [{"name": "bash", "arguments": {"command": edit}}]},
             {"tool_calls": [{"name": "finish", "arguments": {"summary": "docstring added"}}]}]  # fmt: skip
    Path(env["SCRIPT"]).write_text(json.dumps({"turns": turns}))
    work_job(repo, env, matrix["include"][0], tmp_path / "fix-results")
    (row,) = json.loads(run_agents(repo, env, "ingest", str(tmp_path / "fix-results"), "--json"))
    assert row["status"] == "finished" and row["pr_url"].endswith("/pull/1") and len(fake.store.pulls) == 1
    assert git(origin, "rev-parse", "agent/fix-app~1").strip() == first_head
    body = fake.store.pulls[1]["body"]
    assert "task=fix-app-fix1" in body and "task=fix-app -->" in body
    assert "<summary>Trajectory excerpt</summary>" in body and "Return one." in body
