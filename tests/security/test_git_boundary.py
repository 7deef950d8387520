"""The runner's git state is out of the agent's reach: what it writes in its `.git` never runs or lands.

Each test is an attack from the agent's own shell (the `scripted:` model drives it) that ran code on the
host or landed hidden history before the runner's git dir moved out of the work tree.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from faults_helpers import Project, git, json_events

from agent_runner.testing.scripts import bash_turn, finish_turn

TOKEN = "ghp_" + "A1b2C3d4" * 5  # the shape of a GitHub token


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A source repo with a test file, its bare origin, and a marker path only host-side code could write."""
    made = Project.create(tmp_path)
    (made.root / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    git(made.root, "add", "-A")
    git(made.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tests")
    return made


def _run_one(project: Project, turns: list[dict[str, object]]) -> dict[str, object]:
    """Run one task driven by `turns`; return its final event."""
    project.task("evil", project.script("evil", [*turns, finish_turn("done")]), max_attempts=1)
    out = project.cli("run", "--json", timeout=120)
    ended = [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")]
    assert ended, out.stdout + out.stderr
    return ended[-1]


def _hook(marker: Path) -> str:
    """Return shell lines that write a hook script appending to `marker` at .git/x.sh."""
    return f"printf '#!/bin/sh\\necho ran >> {marker}\\ncat\\n' > .git/x.sh && chmod +x .git/x.sh"


def test_replaced_git_folder_with_a_filter_runs_nothing_on_the_host(project: Project, tmp_path: Path) -> None:
    """Attack 1: `.git` replaced by a copy with a clean filter for every file; the runner's staging runs it
    nowhere."""
    marker = tmp_path / "filter-ran"
    replace = "mv .git .git_old && mkdir .git && cp -a .git_old/. .git/ && rm -rf .git_old"
    filters = (
        'git config -f .git/config filter.x.clean "$PWD/.git/x.sh" && mkdir -p .git/info && '
        "echo '* filter=x' > .git/info/attributes && echo '* filter=x' > .gitattributes"
    )
    event = _run_one(
        project,
        [bash_turn(f"{replace} && {_hook(marker)} && {filters}"), bash_turn("echo 'y = 2' > extra.py")],
    )
    assert not marker.exists(), "a filter the agent defined ran outside its sandbox"
    assert event["event"] == "finished", event


def test_hooks_the_agent_creates_never_run_on_the_host(project: Project, tmp_path: Path) -> None:
    """Attack 2: a branch switch, then hooks for every ref update and commit, an edit: none runs on the host
    (the agent's own git commands would run them, in its sandbox: it runs none after planting them)."""
    marker = tmp_path / "hook-ran"
    hooks = " && ".join(
        f"cp .git/x.sh .git/hooks/{name}"
        for name in (
            "reference-transaction",
            "pre-commit",
            "post-commit",
            "post-checkout",
            "post-index-change",
        )
    )
    event = _run_one(
        project,
        [
            bash_turn("git checkout -q -b elsewhere"),
            bash_turn(f"mkdir -p .git/hooks && {_hook(marker)} && {hooks}"),
            bash_turn("git config core.hooksPath .git/hooks && echo 'y = 2' > extra.py"),
        ],
    )
    assert not marker.exists(), "a hook the agent planted ran outside its sandbox"
    assert event["event"] == "finished", event


def test_only_one_runner_commit_of_the_final_tree_lands(project: Project) -> None:
    """Attack 3: hidden commits (a token, a big binary, a noqa, a workflow, a deleted test), then a clean
    tree and one harmless file: the branch holds one commit by the runner, none of the hidden objects."""
    hidden = (
        f"printf 'TOKEN = \"{TOKEN}\"\\n' > leak.py && head -c 3000000 /dev/urandom > big.bin && "
        "echo 'import os  # noqa' > n.py && mkdir -p .github/workflows && "
        "echo 'on: push' > .github/workflows/x.yml && git rm -q test_calc.py && git add -A && "
        "git -c user.name=evil -c user.email=e@e commit -qm hidden"
    )
    restore = (
        "git rm -q -r leak.py big.bin n.py .github && git checkout HEAD~1 -- test_calc.py && "
        "git -c user.name=evil -c user.email=e@e commit -qm restore && echo 'x = 1' > harmless.py"
    )
    event = _run_one(project, [bash_turn(hidden), bash_turn(restore)])
    assert event["event"] == "finished", event
    base = git(project.root, "rev-parse", "main")
    assert git(project.root, "rev-list", f"{base}..agent/evil").count("\n") == 0  # one commit
    assert git(project.root, "rev-parse", "agent/evil^") == base
    assert (
        git(project.root, "log", "-1", "--format=%an <%ae>", "agent/evil")
        == "agent-runner <agent-runner@localhost>"
    )
    assert git(project.root, "diff", "--name-only", base, "agent/evil") == "harmless.py"
    leak = project.root.parent / "leak.py"
    leak.write_text(f'TOKEN = "{TOKEN}"\n')
    leak_blob = git(project.root, "hash-object", str(leak))
    assert subprocess.run(["git", "cat-file", "-e", leak_blob], cwd=project.root).returncode != 0
    assert not git(project.root, "log", "--all", "--format=%an").count("evil")


def test_an_empty_nested_repository_fails_the_task_instead_of_looping(project: Project) -> None:
    """A `git init` in a subfolder makes staging impossible: the task fails (an attempt spent, the reason
    named), it is not re-queued as an infrastructure fault again and again."""
    event = _run_one(project, [bash_turn("mkdir vendor && git -C vendor init -q && echo 'y = 2' > extra.py")])
    assert event["event"] == "failed", event
    assert "holds a git repository at vendor" in str(event.get("message")), event
