"""Red team: work trees that break the host's staging, gates or clean-up, and how the attempt ends.

The safe ending is a task failure (outcome `rejected`, the attempt spent, the reason given back). The unsafe
one is an infrastructure failure (`infra`) or a crashed worker: the task is re-queued without spending an
attempt, so a hostile or confused agent runs again up to `infra_retries` times (default 5) at full model
cost, or a host process is exhausted first. The projects set `infra_retries = 0`, so one run shows the
ending. A test that documents a hole is a strict xfail.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from faults_helpers import Project, git, json_events

from agent_runner.testing.scripts import bash_turn, finish_turn
from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A source repo (calc.py, a test), no infrastructure retries, sandbox "none" unless a test says."""
    made = Project.create(tmp_path)
    (made.root / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    made.configure("infra_retries = 0")
    _commit(made)
    return made


def _commit(project: Project) -> None:
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "setup", check=False)


def _run_one(project: Project, turns: list[dict[str, Any]], **cli: Any) -> dict[str, Any]:
    """Run one task driven by `turns` (then `finish`); return its final event."""
    project.task("evil", project.script("evil", [*turns, finish_turn("done")]), max_attempts=1)
    out = project.cli("run", "--json", timeout=120, **cli)
    ended = [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")]
    assert ended, out.stdout + out.stderr
    assert not [e for e in json_events(out.stdout) if e.get("event") == "requeued"]  # infra_retries = 0
    return ended[-1]


def _outcome(event: dict[str, Any]) -> str | None:
    """Return the attempt's outcome (None when the worker crashed and sent no result)."""
    return (event.get("result") or {}).get("outcome")


def test_undecodable_working_tree_encoding_fails_the_task(project: Project) -> None:
    """`.gitattributes` says *.txt is UTF-16; a.txt is not: the task fails, it is not re-queued."""
    attrs = (
        "printf '*.txt working-tree-encoding=UTF-16\\n' > .gitattributes && "
        "printf '\\xff\\xfe\\x00\\xd8' > a.txt"
    )
    event = _run_one(project, [bash_turn(f"{attrs} && echo 'x = 1' > new.py")])
    assert _outcome(event) == "rejected", event


def test_gitmodules_with_a_command_update_fails_the_task(project: Project, tmp_path: Path) -> None:
    """A nested repo and a .gitmodules entry whose update is a command: nothing runs, the task fails.
    (At 9f8bf57 host `git diff` read the work tree's .gitmodules and died on `update = !cmd`: infra.)"""
    marker = tmp_path / "update-ran"
    nested = (
        "mkdir sub && git -C sub init -q && echo 'x = 1' > sub/a.py && git -C sub add a.py && "
        "git -C sub -c user.name=a -c user.email=a@a commit -qm x && "
        f"printf '[submodule \"sub\"]\\n\\tpath = sub\\n\\turl = ./sub\\n\\tupdate = !touch {marker}\\n' "
        "> .gitmodules && echo 'x = 1' > new.py"
    )
    event = _run_one(project, [bash_turn(nested)])
    assert not marker.exists()
    assert _outcome(event) == "rejected", event


def test_nested_repository_without_commits_and_hooks_fails_the_task(project: Project, tmp_path: Path) -> None:
    """Held: a nested repo with no commit, its own fsmonitor, hooks and filter: nothing of it runs on the host
    and the task fails with the reason (WorkTreeError), not as infrastructure."""
    marker = tmp_path / "nested-ran"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho ran >> {marker}\n")
    hook.chmod(0o755)
    nested = (
        f"mkdir sub && git -C sub init -q && git -C sub config core.fsmonitor {hook} && "
        f"git -C sub config core.hooksPath {tmp_path} && git -C sub config filter.x.clean {hook} && "
        "echo '* filter=x' > sub/.gitattributes && echo 'x = 1' > sub/a.py && echo 'y = 2' > new.py"
    )
    event = _run_one(project, [bash_turn(nested)])
    assert not marker.exists(), marker.read_text()
    assert _outcome(event) == "rejected", event
    assert "WorkTreeError" in event["result"]["reason"], event


def test_a_path_named_like_the_runners_files_does_not_crash_the_worker(project: Project) -> None:
    """The agent leaves a non-empty `.runner.git` folder; its work is accepted and lands."""
    event = _run_one(project, [bash_turn("mkdir -p .runner.git/x && echo 'x = 1' > new.py")])
    assert event["event"] == "finished", event
    assert git(project.root, "show", "agent/evil:new.py") == "x = 1"


def test_deeply_nested_pyproject_fails_the_task(project: Project) -> None:
    """pyproject.toml gains `a = [[[[...` 100,000 deep: the diff policy must fail it, not crash."""
    deep = "python3 -c \"open('pyproject.toml','a').write('\\n[tool.x]\\na = ' + '['*100000 + '\\n')\""
    event = _run_one(project, [bash_turn(deep)])
    assert _outcome(event) == "rejected", event


def test_a_test_module_that_overflows_the_parser_fails_the_task(project: Project) -> None:
    """test_deep.py holds `x = 1+1+...` (200,000 terms): the diff policy must fail it, not crash."""
    deep = "python3 -c \"open('test_deep.py','w').write('x = ' + '+'.join(['1']*200000) + '\\n')\""
    event = _run_one(project, [bash_turn(deep)])
    assert _outcome(event) == "rejected", event


def test_a_huge_sparse_file_fails_the_task_without_loading_it(project: Project) -> None:
    """A 700 MB sparse file with the run limited to 600 MB of address space per process: the host must
    refuse it by size (large-files) and never load it."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (600_000_000, 600_000_000))

    event = _run_one(project, [bash_turn("truncate -s 700M big.bin && echo 'x = 1' > new.py")],
                     preexec_fn=limit)  # fmt: skip
    assert _outcome(event) == "rejected", event
    assert "Out of memory" not in str(event), event


def test_a_fifo_does_not_block_staging(project: Project) -> None:
    """Held: a FIFO in the work tree (git skips it; nothing opens it): the rest of the work lands."""
    event = _run_one(project, [bash_turn("mkfifo pipe && echo 'x = 1' > new.py")])
    assert event["event"] == "finished", event
    assert git(project.root, "show", "agent/evil:new.py") == "x = 1"


def test_a_tree_deeper_than_path_max_does_not_fail_staging(project: Project) -> None:
    """A folder tree 3,000 levels deep (made with relative mkdir/chdir; git skips paths past PATH_MAX):
    staging does not fail, the rest of the work lands, and the runner deletes the checkout afterwards
    (shutil.rmtree recurses once per level: RecursionError, which ignore_errors does not cover)."""
    tree = (
        "python3 -c \"import os\nfor _ in range(3000): os.mkdir('d'); os.chdir('d')\n"
        "open('f.txt','w').write('x')\" && echo 'x = 1' > new.py"
    )
    checkouts = project.root / ".agent-runner" / "checkouts"
    try:
        event = _run_one(project, [bash_turn(tree)])
        left = sorted(p.name for p in checkouts.iterdir()) if checkouts.is_dir() else []
    finally:  # pytest's own clean-up of tmp_path recurses once per level and would fail on this tree
        subprocess.run(["rm", "-rf", str(project.root / ".agent-runner")], check=False)
    assert event["event"] == "finished", event
    assert git(project.root, "show", "agent/evil:new.py") == "x = 1"
    assert left == [], f"the runner could not delete the accepted attempt's checkout: {left}"


@needs_bwrap
def test_the_agents_git_as_a_symlink_does_not_steer_the_gate_scratch(project: Project) -> None:
    """Under bwrap the agent moves its .git away (a parent of a read-only mount can be renamed) and links
    .git to /proc: the tests gate must still end the attempt as a task outcome."""
    project.configure('sandbox = "bwrap"\ntest = "python -m pytest -q"')
    _commit(project)
    swap = "mv .git .git-moved && ln -s /proc .git && echo 'x = 1' > new.py"
    event = _run_one(project, [bash_turn(swap)])
    assert _outcome(event) in ("accepted", "rejected"), event
