"""One attempt end to end in-process: checkout, setup, agent (scripted), gates, commit, bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from run_helpers import Project, git

from agent_runner.config.runner import load_config
from agent_runner.core.result import ExitStatus, Outcome, WorkRequest
from agent_runner.core.task import load_task_file
from agent_runner.repo import pools
from agent_runner.worker.job import run_job

NEW_CALC = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"


def _request(project: Project, task_id: str, **config: Any) -> WorkRequest:
    settings = load_config(project.root, overrides=config).model_dump(mode="json", by_alias=True)
    task = load_task_file(project.tasks / f"{task_id}.md")
    return WorkRequest(task=task, repo=str(project.root), config=settings)


def test_change_task_commits_and_bundles(project: Project, tmp_path: Path) -> None:
    """An accepted change has base/head commits, a bundle with the edit, a trajectory; no checkout left."""
    project.task("add-sub", project.edit_script("add", "calc.py", NEW_CALC), title="Add sub")
    result = run_job(_request(project, "add-sub"), workdir=tmp_path / "state")
    assert result.outcome == Outcome.ACCEPTED, result.reason
    assert result.base_commit == git(project.root, "rev-parse", "HEAD")
    assert result.model_calls == 2 and result.exit_status == ExitStatus.FINISHED
    assert result.bundle_path and Path(result.trajectory_path or "").is_file()
    git(project.root, "fetch", "-q", result.bundle_path, "agent/add-sub:agent/add-sub")
    assert "def sub" in git(project.root, "show", "agent/add-sub:calc.py")
    assert "add-sub" in git(project.root, "log", "-1", "--format=%s", "agent/add-sub")
    assert not (tmp_path / "state" / "checkouts" / "add-sub-1").exists()


def test_setup_failure_is_a_task_failure_without_agent(project: Project, tmp_path: Path) -> None:
    """A failing setup command rejects the task with its output tail, and no model is called."""
    project.task("broken", project.edit_script("b", "calc.py", NEW_CALC))
    request = _request(
        project, "broken", setup=["echo preparing && echo 'no such package: frob' >&2 && exit 3"]
    )
    result = run_job(request, workdir=tmp_path / "state")
    assert result.outcome == Outcome.REJECTED
    assert "exited with 3" in result.reason and "no such package: frob" in result.reason
    assert result.model_calls == 0 and result.trajectory_path is None
    assert Path(result.checkout_path or "").is_dir()  # kept for inspection


def test_setup_network_error_is_infrastructure(project: Project, tmp_path: Path) -> None:
    """A setup command that fails on DNS is an infrastructure failure (retried, no attempt spent)."""
    project.task("net", project.edit_script("n", "calc.py", NEW_CALC))
    request = _request(project, "net", setup=["echo 'Could not resolve host: pypi.org' >&2; exit 1"])
    assert run_job(request, workdir=tmp_path / "state").outcome == Outcome.INFRA


def test_setup_runs_in_checkout_with_private_home_and_copied_files(project: Project, tmp_path: Path) -> None:
    """Setup sees copied untracked files and a private HOME; its output is not committed."""
    (project.root / ".env").write_text("SETTING=1\n")
    project.task("env", project.edit_script("e", "calc.py", NEW_CALC))
    setup = ["test -f .env && mkdir -p .venv && echo $HOME > .venv/home.txt"]
    request = _request(project, "env", setup=setup, copy=[".env"], keep_checkouts="always")
    result = run_job(request, workdir=tmp_path / "state")
    assert result.outcome == Outcome.ACCEPTED, result.reason
    home = (tmp_path / "state" / "runs" / "env" / "1" / "home").resolve()
    assert (Path(result.checkout_path or "") / ".venv" / "home.txt").read_text().strip() == str(home)
    git(project.root, "fetch", "-q", result.bundle_path or "", "agent/env:agent/env")
    assert git(project.root, "diff", "--name-only", "main", "agent/env") == "calc.py"


def test_model_errors_are_classified(project: Project, tmp_path: Path) -> None:
    """A rejected key or an unknown model name stops the model (model_auth); an outage is infrastructure."""
    project.task("auth", project.script("auth", [{"error": "auth"}]))
    project.task("gone", project.script("gone", [{"error": "not_found"}]))
    project.task("down", project.script("down", [{"error": "unavailable"}]))
    project.task("bad", project.script("bad", [{"error": "fatal"}]))
    assert run_job(_request(project, "auth"), workdir=tmp_path / "s").outcome == Outcome.MODEL_AUTH
    assert run_job(_request(project, "gone"), workdir=tmp_path / "s").outcome == Outcome.MODEL_AUTH
    assert run_job(_request(project, "down"), workdir=tmp_path / "s").outcome == Outcome.INFRA
    assert run_job(_request(project, "bad"), workdir=tmp_path / "s").outcome == Outcome.REJECTED


def test_agent_without_changes_is_rejected(project: Project, tmp_path: Path) -> None:
    """An agent that finishes without touching a file fails the task, with the gate report as reason."""
    finish = [{"tool_calls": [{"name": "finish", "arguments": {"summary": "nothing to do"}}]}]
    project.task("lazy", project.script("lazy", finish * 4))
    result = run_job(_request(project, "lazy", reflection_rounds=1), workdir=tmp_path / "state")
    assert result.outcome == Outcome.REJECTED
    assert "non-empty-diff" in result.reason and result.bundle_path is None


def test_inline_bundle_travels_in_the_result(project: Project, tmp_path: Path) -> None:
    """With inline_bundle the commits come back as base64 instead of a path."""
    project.task("inline", project.edit_script("i", "calc.py", NEW_CALC))
    result = run_job(_request(project, "inline"), workdir=tmp_path / "state", inline_bundle=True)
    assert result.bundle_b64 and result.bundle_path is None


def test_missing_base_branch_is_a_task_failure(project: Project, tmp_path: Path) -> None:
    """A task whose base branch does not exist fails as a task (no infrastructure retries)."""
    project.task("based", project.edit_script("based", "calc.py", NEW_CALC), base="release-9")
    result = run_job(_request(project, "based"), workdir=tmp_path / "state")
    assert result.outcome == Outcome.REJECTED and "release-9" in result.reason


def test_repo_from_bundle_when_the_worker_cannot_reach_it(project: Project, tmp_path: Path) -> None:
    """A request carrying the repo as a bundle runs against an unreachable URL and still lands its commit."""
    from agent_runner.repo import bundles

    project.task("remote", project.edit_script("remote", "calc.py", NEW_CALC))
    bundle = bundles.bundle_repo(project.root, tmp_path / "src.bundle")
    request = _request(project, "remote").model_copy(
        update={"repo": "https://unreachable.invalid/x.git", "repo_bundle_b64": bundles.read_b64(bundle)}
    )
    result = run_job(request, workdir=tmp_path / "state", inline_bundle=True)
    assert result.outcome == Outcome.ACCEPTED, result.reason
    assert result.base_commit == git(project.root, "rev-parse", "main")


def test_finished_checkout_is_reused_clean(project: Project, tmp_path: Path, monkeypatch: Any) -> None:
    """A parked checkout is refreshed for the next task: its edits, stray files, hooks and refs are gone."""
    project.task("first", project.edit_script("first", "calc.py", NEW_CALC))
    project.task("second", project.edit_script("second", "notes.txt", "second\n"))
    monkeypatch.setattr(pools, "PARK_MIN_INDEX_BYTES", 0)  # the fixture repo is small
    state = tmp_path / "state"
    assert run_job(_request(project, "first"), workdir=state).outcome == Outcome.ACCEPTED
    (parked,) = [p for p in (state / "pool").glob("*/*") if p.is_dir() and p.suffix != ".git"]
    (parked / "stray.txt").write_text("left behind\n")
    (parked / ".git" / "hooks").mkdir()
    (parked / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    inode = parked.stat().st_ino
    result = run_job(_request(project, "second"), workdir=state, inline_bundle=True)
    assert result.outcome == Outcome.ACCEPTED, result.reason
    bundle = tmp_path / "second.bundle"
    bundle.write_bytes(__import__("base64").b64decode(result.bundle_b64 or ""))
    git(project.root, "fetch", "-q", str(bundle), "agent/second:agent/second")
    assert git(project.root, "diff", "--name-only", "main", "agent/second") == "notes.txt"
    (reused,) = [p for p in (state / "pool").glob("*/*") if p.is_dir() and p.suffix != ".git"]
    assert not (reused / "stray.txt").exists() and not (reused / ".git" / "hooks").exists()
    assert reused.stat().st_ino == inode  # the same folder re-used, not cloned again
    assert "agent/first" not in git(reused, "branch", "--format=%(refname:short)")
    assert "def sub" not in (reused / "calc.py").read_text()


def test_tests_that_write_files_get_the_tree_checked_again(project: Project, tmp_path: Path) -> None:
    """When the test command changes the tree during the gates, the gates check the new tree again, and the
    commit holds exactly the tree they passed."""
    project.task("gen", project.edit_script("gen", "calc.py", NEW_CALC))
    request = _request(project, "gen", test="bash -c 'test -f generated.txt || date +%N > generated.txt'")
    result = run_job(request, workdir=tmp_path / "state", inline_bundle=True)
    assert result.outcome == Outcome.ACCEPTED, result.reason
    bundle = tmp_path / "gen.bundle"
    bundle.write_bytes(__import__("base64").b64decode(result.bundle_b64 or ""))
    git(project.root, "fetch", "-q", str(bundle), "agent/gen:agent/gen")
    changed = git(project.root, "diff", "--name-only", "main", "agent/gen").split()
    assert changed == ["calc.py", "generated.txt"]
    policy = next(g for g in result.gates if g.name == "diff-policy")
    assert policy.after["files"] == 2  # the gates saw the file the tests wrote, as the commit does


def test_tests_that_rewrite_the_tree_every_run_leave_nothing_checked_to_commit(
    project: Project, tmp_path: Path
) -> None:
    """A test command that changes the tree on every run (or agent code doing so on purpose, to land content
    no gate saw): the attempt is rejected with the reason, never committed unchecked."""
    project.task("gen", project.edit_script("gen", "calc.py", NEW_CALC))
    request = _request(project, "gen", test="bash -c 'date +%N >> generated.txt'")
    result = run_job(request, workdir=tmp_path / "state", inline_bundle=True)
    assert result.outcome == Outcome.REJECTED and "the work tree changed while the gates ran" in result.reason
    assert not result.bundle_b64
