"""Red team: what lands in the user's source repo when the agent shapes its work tree against the gates.

Each test drives a real attempt (`run-agents run --json`, the `scripted:` model, sandbox "none": only the
host-side staging, diff policy and landing are under test) and then reads the task branch in the source
repo. A test that documents a hole is a strict xfail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from faults_helpers import Project, git, json_events

from agent_runner.testing.scripts import bash_turn, finish_turn, write_command

TOKEN = "ghp_" + "Z9y8X7w6" * 5  # the shape of a GitHub token


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A source repo (calc.py, a test), no infrastructure retries."""
    made = Project.create(tmp_path)
    (made.root / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    made.configure("infra_retries = 0")
    git(made.root, "add", "-A")
    git(made.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tests")
    return made


def _run_one(project: Project, turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one task driven by `turns` (then `finish`); return its final event."""
    project.task("evil", project.script("evil", [*turns, finish_turn("done")]), max_attempts=1)
    out = project.cli("run", "--json", timeout=120)
    ended = [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")]
    assert ended, out.stdout + out.stderr
    return ended[-1]


def _landed_tree(project: Project) -> str:
    """Return `git ls-tree -r` of the task branch ('' when nothing landed)."""
    return git(project.root, "ls-tree", "-r", "agent/evil", check=False)


def _has_blob(project: Project, text: str) -> bool:
    blob = subprocess.run(
        ["git", "hash-object", "--stdin"], cwd=project.root, input=text, capture_output=True, text=True
    ).stdout.strip()
    return subprocess.run(["git", "cat-file", "-e", blob], cwd=project.root).returncode == 0


def test_a_nested_repository_never_lands_as_a_gitlink(project: Project) -> None:
    """A nested repo with a commit (no .gitmodules) beside a harmless edit: no gitlink on the branch. (At
    9f8bf57 it landed as a 160000 entry: the runner's diff.ignoreSubmodules = all hid it from the policy.)"""
    nested = (
        "mkdir vendored && git -C vendored init -q && echo 'x = 1' > vendored/a.py && "
        "git -C vendored add a.py && git -C vendored -c user.name=a -c user.email=a@a commit -qm x && "
        "echo 'y = 2' > new.py"
    )
    _run_one(project, [bash_turn(nested)])
    assert " commit " not in _landed_tree(project), _landed_tree(project)


def test_a_quoted_file_name_does_not_hide_lines_from_the_diff_policy(project: Project) -> None:
    """A file named `we"ird.py` holding a noqa and a token: the policy must see both, nothing lands."""
    content = f'import os  # noqa\nTOKEN = "{TOKEN}"\n'
    event = _run_one(project, [bash_turn(write_command("'we\"ird.py'", content))])
    assert not _has_blob(project, content), "a token and a noqa landed past the diff policy"
    assert (event.get("result") or {}).get("outcome") == "rejected", event


def test_option_like_and_odd_file_names_are_never_options(project: Project) -> None:
    """Held: names like `--output-file=out.py`, `-rf.py`, a newline or a non-UTF-8 byte reach ruff and git
    after `--` or on stdin: ruff lints them as files (the unused imports are reported) and writes nothing."""
    names = (
        "printf 'import os\\n' > ./--output-file=out.py && printf 'import sys\\n' > ./-rf.py && "
        "printf 'import json\\n' > \"$(printf 'new\\nline.py')\" && printf 'x = 2\\n' > ./--fix.py"
    )
    event = _run_one(project, [bash_turn(names)])
    result = event.get("result") or {}
    assert result.get("outcome") == "rejected", event
    lint = next(g for g in result["gates"] if g["name"] == "lint-touched")
    assert any(o.startswith("--output-file=out.py:1:8: F401") for o in lint["offending"]), lint
    assert any(o.startswith("-rf.py:1:8: F401") for o in lint["offending"]), lint
    checkout = project.root / ".agent-runner" / "checkouts" / "evil-1"
    assert not (checkout / "out.py").exists()
    assert (checkout / "--fix.py").read_text() == "x = 2\n"


def test_a_token_in_a_file_git_calls_binary_is_still_found(project: Project) -> None:
    """The config and the task allow binary files; a text file with a token and one NUL byte must still
    be refused by the token check (it is not waived by `binary`)."""
    project.configure('allow = ["binary"]')
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "allow binary")
    data = f"printf 'TOKEN={TOKEN}\\n\\000\\n' > data.txt && echo 'x = 1' > new.py"
    project.task("evil", project.script("evil", [bash_turn(data), finish_turn("done")]), max_attempts=1,
                 allow=["binary"])  # fmt: skip
    out = project.cli("run", "--json", timeout=120)
    assert [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")], out.stdout
    assert not _has_blob(project, f"TOKEN={TOKEN}\n\0\n"), "a token in a binary file landed"
