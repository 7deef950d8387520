"""Git faults at publish and start: non-fast-forward, protected branch, unreachable remote, deleted base."""

from __future__ import annotations

import stat

from faults_helpers import Project, Scenario, git, json_events

from agent_runner.testing.fake_github import FakeGitHub

TOKEN = {"GITHUB_TOKEN": "ghp_faultsuitefaketoken000000000000000002"}
HOOK = """#!/bin/sh
while read old new ref; do
  case "$ref" in
    refs/heads/agent/prot*) echo "GH006: Protected branch update failed for $ref." >&2; exit 1 ;;
  esac
done
"""


def _github(project: Project, fake: FakeGitHub) -> None:
    project.configure(
        f'[tool.agent-runner.github]\napi_url = "{fake.base_url}"\nrepository = "{fake.full_name}"\n'
        "request_interval_s = 0\nwrite_interval_s = 0\n"
    )


def _ends(stdout: str) -> dict[str, dict[str, object]]:
    """Return the last outcome event per task: finished, failed, unpublished or published."""
    kinds = ("finished", "failed", "unpublished", "published")
    return {e["task"]: e for e in json_events(stdout) if e.get("event") in kinds}


def test_push_rejected_non_fast_forward_and_protected_branch(project: Project, scenario: Scenario) -> None:
    """Rejected pushes leave the task unpublished with git's reason and the local branch; others publish."""
    git(project.origin, "config", "receive.denyNonFastForwards", "true")
    hook = project.origin / "hooks" / "pre-receive"
    hook.write_text(HOOK)
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    git(
        project.root, "checkout", "-q", "-b", "agent/nf"
    )  # someone else's commit already on origin's agent/nf
    (project.root / "other.txt").write_text("not ours\n")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "foreign")
    git(project.root, "push", "-q", "origin", "agent/nf")
    git(project.root, "checkout", "-q", "main")
    git(project.root, "branch", "-q", "-D", "agent/nf")
    for task_id in ("nf", "prot", "ok"):
        project.task(
            task_id, project.edit_script(task_id, f"{task_id}.py", "x = 1\n"), paths=[f"{task_id}.py"]
        )
    with FakeGitHub(origin=project.origin) as fake:
        _github(project, fake)
        out = project.cli("run", "--json", env=TOKEN)
        heads = [p["head"]["ref"] for p in fake.store.pulls.values()]
    ends = _ends(out.stdout)
    assert ends["ok"]["event"] == "published" and heads == ["agent/ok"], out.stdout
    for task_id, needle in (("nf", "non-fast-forward"), ("prot", "Protected branch")):
        assert ends[task_id]["event"] == "unpublished", ends[task_id]
        assert needle in str(ends[task_id]["message"]) and "run-agents publish" in str(
            ends[task_id]["message"]
        )
        assert git(project.root, "rev-parse", "--verify", f"agent/{task_id}")  # the work stays local
    assert out.returncode == 1
    nf, prot = (str(ends[t]["message"])[:48] for t in ("nf", "prot"))
    scenario.outcome = f"unpublished, branch kept: nf '{nf}...'; prot '{prot}...'"


def test_remote_unreachable_and_base_branch_deleted(project: Project, scenario: Scenario) -> None:
    """An unreachable remote leaves the task unpublished; a task whose base was deleted is held naming it,
    never claimed (no attempt is spent on a branch that is not there)."""
    git(project.root, "branch", "feature")
    project.task("far", project.edit_script("far", "far.py", "x = 1\n"), paths=["far.py"])
    project.task("nobase", project.edit_script("nb", "nb.py", "x = 1\n"), paths=["nb.py"], base="feature")
    git(project.root, "branch", "-q", "-D", "feature")
    git(project.root, "remote", "set-url", "origin", str(project.root.parent / "gone.git"))
    with FakeGitHub(origin=project.origin) as fake:
        _github(project, fake)
        out = project.cli("run", "--json", env=TOKEN)
        assert not fake.store.pulls
    ends = _ends(out.stdout)
    assert ends["far"]["event"] == "unpublished", out.stdout
    assert "gone.git" in str(ends["far"]["message"]), ends["far"]
    assert git(project.root, "rev-parse", "--verify", "agent/far")
    held = next(e for e in json_events(out.stdout) if e.get("event") == "held")
    assert held["task"] == "nobase" and "base 'feature' is not a branch" in held["message"], held
    assert [e["type"] for e in project.events() if e.get("task") == "nobase"] == ["queued"]
    assert "feature" in json_events(out.stdout)[-1]["held"]["nobase"]
    far = str(ends["far"]["message"])[:40]
    scenario.outcome = f"far unpublished ({far}); nobase held, unclaimed: {held['message'][:50]}"
