"""Red team: a sandboxed agent makes the host run, write or read something outside its checkout.

Each test drives a real attempt (`run-agents run --json`, the `scripted:` model) under bubblewrap: the agent
sees only its checkout, and /tmp (where pytest's tmp_path lives) is a private tmpfs for it. A marker or a
secret under tmp_path, outside the checkout, can therefore only be written or read by host-side code: the
worker process, host git, host ruff, the gates' own Python. A test that documents a hole is a strict xfail;
the first five were holes at 9f8bf57 (each reproduced there) and pass with the fixes under way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
from faults_helpers import Project, git, json_events

from agent_runner.testing.scripts import bash_turn, finish_turn, write_command
from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A source repo (calc.py, a test) whose attempts run under bwrap; no infrastructure retries."""
    made = Project.create(tmp_path)
    (made.root / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"
    )
    made.configure('sandbox = "bwrap"\ninfra_retries = 0')
    _commit(made)
    return made


def _commit(project: Project) -> None:
    git(project.root, "add", "-A")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "setup", check=False)


def _run_one(project: Project, turns: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """Run one task driven by `turns` (then `finish`); return its final event."""
    fields.setdefault("max_attempts", 1)
    project.task("evil", project.script("evil", [*turns, finish_turn("done")]), **fields)
    out = project.cli("run", "--json", timeout=120)
    ended = [e for e in json_events(out.stdout) if e.get("event") in ("finished", "failed")]
    assert ended, out.stdout + out.stderr
    return ended[-1]


def _seen_by_agent(project: Project) -> str:
    """Return every message the agent was given (task prompt, tool results, gate reports)."""
    texts: list[str] = []
    for path in (project.root / ".agent-runner" / "runs" / "evil").glob("*/trajectory.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts.append(str(record.get("text", "")))
            texts += [str(r.get("content", "")) for r in record.get("results", [])]
    return "\n".join(texts)


def _script(marker: Path) -> str:
    """Return a shell script that appends its caller to `marker` (a host path the sandbox cannot write)."""
    return f'#!/bin/sh\necho "ran in $(pwd)" >> {marker}\n'


def test_prompt_template_written_by_the_agent_runs_nothing_on_the_host(
    project: Project, tmp_path: Path
) -> None:
    """The agent writes prompts/reflection.md.j2 with a jinja payload and fails a gate once (a noqa), so the
    runner renders the reflection prompt: nothing may run outside the sandbox. (At 9f8bf57 the payload ran:
    job_agent.render loaded templates from <checkout>/prompts into an unsandboxed jinja2 Environment.)"""
    marker = tmp_path / "template-ran"
    payload = '{{ lipsum.__globals__["os"].system("echo ran >> ' + str(marker) + '") }}fix it\n'
    plant = f"mkdir -p prompts && {write_command('prompts/reflection.md.j2', payload)}"
    turns = [
        bash_turn(f"{plant} && echo 'import os  # noqa' > new.py"),
        finish_turn("first try"),
        bash_turn("rm -r prompts && echo 'x = 1' > new.py"),
    ]
    event = _run_one(project, turns)
    assert not marker.exists(), "a jinja template the agent wrote ran Python on the host"
    assert event["event"] == "finished", event  # the reflection round was rendered, the fix accepted


def test_nested_repository_config_never_runs_on_the_host(project: Project, tmp_path: Path) -> None:
    """A committed nested repo whose config names an fsmonitor program in the checkout, listed in
    .gitmodules with `ignore = none`, with a change inside it: no host git command may run that program.
    (At 9f8bf57 it ran: .gitmodules overrode the runner's diff.ignoreSubmodules and host `git status` in
    workdiff.is_unchanged ran `git status` inside the nested repo with its own config.)"""
    marker = tmp_path / "fsmonitor-ran"
    nested = (
        "mkdir sub && git -C sub init -q && echo 'x = 1' > sub/a.py && git -C sub add a.py && "
        "git -C sub -c user.name=a -c user.email=a@a commit -qm x && "
        f"{write_command('hook.sh', _script(marker))} && chmod +x hook.sh && "
        'git -C sub config core.fsmonitor "$PWD/hook.sh" && echo changed >> sub/a.py && '
        "printf '[submodule \"sub\"]\\n\\tpath = sub\\n\\turl = ./sub\\n\\tignore = none\\n' > .gitmodules"
    )
    event = _run_one(project, [bash_turn(nested)])
    assert not marker.exists(), "the nested repo's fsmonitor ran outside the sandbox: " + marker.read_text()
    assert (event.get("result") or {}).get("outcome") == "rejected", event


def test_ruff_config_cannot_read_host_files_into_the_gate_report(project: Project, tmp_path: Path) -> None:
    """ruff.toml `extend`s a host file the sandbox hides; its content must not reach the agent. (At 9f8bf57
    host ruff read it and its TOML parse error quoted the line in the reflection report.)"""
    secret = tmp_path / "host-secret.env"
    secret.write_text("API_KEY=hunter2-only-on-the-host\n")
    config = write_command("ruff.toml", f'extend = "{secret}"\n')
    _run_one(project, [bash_turn(f"{config} && echo 'x = 1' > new.py")])
    assert "hunter2-only-on-the-host" not in _seen_by_agent(project), "a host file leaked to the agent"


def test_ruff_config_cannot_make_the_host_write_outside_the_checkout(project: Project) -> None:
    """ruff.toml sets `cache-dir` to the source repo (three levels up from the checkout). (At 9f8bf57 host
    ruff wrote CACHEDIR.TAG, its cache and a `*` .gitignore there, hiding the user's new files from git.)"""
    before = {*os.listdir(project.root), ".agent-runner"}  # the state folder the run itself creates
    config = write_command("ruff.toml", 'cache-dir = "../../.."\n')
    _run_one(project, [bash_turn(f"{config} && echo 'x = 1' > new.py")])
    added = sorted(set(os.listdir(project.root)) - before)
    assert added == [], f"host ruff wrote {added} into the source repo"


def test_mutation_gate_never_writes_through_a_symlink(project: Project, tmp_path: Path) -> None:
    """write-tests: `leak.py` links to a host Python file; the mutants gate must not rewrite that file.
    (At 9f8bf57 Trial.killed wrote every mutant through the scratch copy's symlink; with two workers the
    writes raced, a mutant could be restored as the "original", and the worker crashed.)"""
    victim = tmp_path / "victim.py"
    victim.write_text("def f(x):\n    if x > 1:\n        return 2\n    return 3\n")
    os.utime(victim, ns=(1_000_000_000, 1_000_000_000))
    project.configure('test = "python -m pytest -q"')
    project.configure("[tool.agent-runner.gates]\nmutant_workers = 1")
    _commit(project)
    test = "from calc import add\n\n\ndef test_more():\n    assert add(2, 2) == 4\n"
    event = _run_one(
        project,
        [bash_turn(f"ln -s {victim} leak.py && {write_command('test_more.py', test)}")],
        kind="write-tests",
    )
    assert "mutants" in [g["name"] for g in (event.get("result") or {}).get("gates", [])], event
    assert victim.stat().st_mtime_ns == 1_000_000_000, "the host wrote through the agent's symlink"
    assert victim.read_text() == "def f(x):\n    if x > 1:\n        return 2\n    return 3\n"


def test_processes_the_agent_leaves_behind_cannot_race_the_gates_or_the_commit(project: Project) -> None:
    """Held: the agent starts detached loops (setsid, nohup, disowned) that keep rewriting a file, then
    finishes; they die with its sandbox, so the gates and the runner's commit see the file as it was left."""
    loops = (
        "echo 'x = 1' > new.py && "
        "(setsid sh -c 'while :; do echo y = 2 >> new.py; done' > /dev/null 2>&1 &) && "
        "(nohup sh -c 'while :; do echo z = 3 >> new.py; done' > /dev/null 2>&1 &) && "
        "sh -c 'while :; do echo w = 4 >> new.py; done' > /dev/null 2>&1 & disown; echo started"
    )
    event = _run_one(project, [bash_turn(loops), bash_turn("echo 'x = 1' > new.py")])
    assert event["event"] == "finished", event
    assert git(project.root, "show", "agent/evil:new.py") == "x = 1"
