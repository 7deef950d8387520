"""The SSH executor over namespace machines with real sshd: spreading, pins, results and branches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_helpers import FleetProject, git

import agent_runner
from agent_runner.config.runner import load_config
from agent_runner.coordinator.events import RunEvent
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.result import WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.ssh import MachineConfig, SshConfig, SshExecutor
from agent_runner.queue.intake import open_queue
from agent_runner.testing.scripts import bash_turn, finish_turn, probe_model_package


def test_six_tasks_spread_over_two_machines_with_a_pin(project: FleetProject) -> None:
    """Six tasks run on both machines, the pinned one on its machine, each landing its branch."""
    project.configure({"m1": {"tags": ["big-ram"]}, "m2": {"source": "bundle"}})
    for i in range(6):
        pin = {"machine": "m2"} if i == 0 else ({"machine": "big-ram"} if i == 1 else {})
        project.task(f"t{i}", project.edit_script(f"s{i}", f"out{i}.txt", f"value {i}", delay_s=0.3), **pin)
    done = project.cli("run", "--no-publish", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    finished = {e["task"]: e["result"] for e in project.queue_events() if e["type"] == "finished"}
    assert sorted(finished) == [f"t{i}" for i in range(6)]
    assert finished["t0"]["machine"] == "m2" and finished["t1"]["machine"] == "m1"
    assert {r["machine"] for r in finished.values()} == {"m1", "m2"}
    for i in range(6):
        assert git(project.root, "show", f"agent/t{i}:out{i}.txt") == f"value {i}"


RECORDER = """#!/bin/sh
exec {python} -c '
import json, os, sys
request = json.load(sys.stdin)
with open(os.environ["RECORD"], "a") as fh:
    seen = {{"secrets": request["secrets"], "repo": request["repo"], "argv": sys.argv}}
    seen.update(bundle=bool(request.get("repo_bundle_b64")), home=os.environ["HOME"])
    fh.write(json.dumps(seen) + "\\n")
print(json.dumps({{"task_id": request["task"]["id"], "attempt": request["attempt"], "outcome": "accepted"}}))
' "$@"
"""


def test_machine_gets_only_its_model_keys_and_fetches_the_repo_itself(
    project: FleetProject, tmp_path: Path
) -> None:
    """The request on stdin carries only the allowed keys; the machine gets origin's URL, or a bundle."""
    recorder = tmp_path / "recorder"
    recorder.write_text(RECORDER.format(python=sys.executable))
    recorder.chmod(0o755)
    record = tmp_path / "record.jsonl"
    env = {"RECORD": str(record)}
    machines = [
        MachineConfig(
            name=n, ssh=n, command=str(recorder), env=env, forward_env=["ANTHROPIC_API_KEY"], source=s
        )
        for n, s in (("m1", "auto"), ("m2", "bundle"))
    ]
    executor = SshExecutor(machines, ssh=SshConfig(config_file=str(project.fleet.ssh_config)))
    secrets = {"ANTHROPIC_API_KEY": "sk-model", "OPENAI_API_KEY": "sk-other", "GITHUB_TOKEN": "ghp-never"}
    try:
        for slot in executor.slots():
            task = Task(id=f"k-{slot.machine}", kind="change")
            executor.run(WorkRequest(task=task, repo=str(project.root), secrets=secrets), slot)
    finally:
        executor.close()
    seen = {Path(r["home"]).parent.name: r for r in map(json.loads, record.read_text().splitlines())}
    assert all(r["secrets"] == {"ANTHROPIC_API_KEY": "sk-model"} for r in seen.values())
    assert not any("sk-model" in arg for r in seen.values() for arg in r["argv"])
    assert seen["m1"]["repo"] == str(project.root.parent / "remote.git") and not seen["m1"]["bundle"]
    assert seen["m2"]["bundle"]


SECRETS = {"ANTHROPIC_API_KEY": "sk-model", "GITHUB_TOKEN": "ghp-never"}


def test_attempts_fork_from_a_warm_server_or_fall_back_saying_so(
    project: FleetProject, caplog: pytest.LogCaptureFixture
) -> None:
    """m1 forks attempts from its fork server; on m2 none can start: the plain worker runs, logged.

    Either way no file on a machine holds the GitHub token given to the coordinator."""
    blocked = project.fleet.machines["m2"].home / ".agent-runner-worker" / "forkserver"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the server's folder would be")
    project.configure({"m1": {}, "m2": {}, "m3": {"ssh": "m1", "fork_server": False}})
    executor = SshExecutor.from_config(load_config(project.root), root=project.root)
    try:
        statuses = {s.name: s for s in executor.check()}
        assert Path(statuses["m1"].fork_python).parent == Path(sys.executable).parent
        assert not statuses["m3"].fork_python
        for slot in executor.slots():
            model = project.edit_script(f"f-{slot.machine}", "f.txt", slot.machine)
            task = Task(id=f"f-{slot.machine}", kind="change", model=model)
            request = WorkRequest(task=task, repo=str(project.root), secrets=SECRETS)
            result = executor.run(request, slot)
            assert result.outcome == "accepted", result.reason
    finally:
        executor.close()
    homes = [str(m.home) for m in project.fleet.machines.values()]
    assert subprocess.run(["grep", "-r", "ghp-never", *homes], capture_output=True).returncode == 1
    fell_back = [r.getMessage() for r in caplog.records if "fork server unavailable" in r.getMessage()]
    assert len(fell_back) == 1 and fell_back[0].startswith("machine m2:")
    servers = project.fleet.machines["m1"].home / ".agent-runner-worker" / "forkserver"
    assert list(servers.glob("*.sock"))


def test_a_machines_fork_server_imports_the_model_module_once(project: FleetProject, tmp_path: Path) -> None:
    """The machine's fork server imports the attempts' model module itself, before forking, just once."""
    imports = tmp_path / "imports.log"
    probe = probe_model_package(tmp_path, imports)
    project.configure({"m1": {"env": {"PYTHONPATH": str(tmp_path)}}})
    executor = SshExecutor.from_config(load_config(project.root), root=project.root)
    try:
        (slot,) = executor.slots()
        for name in ("p1", "p2"):
            model = project.edit_script(name, f"{name}.txt", name).replace("scripted:", probe, 1)
            request = WorkRequest(task=Task(id=name, kind="change", model=model), repo=str(project.root))
            result = executor.run(request, slot)
            assert result.outcome == "accepted", result.reason
    finally:
        executor.close()
    assert len(imports.read_text().split()) == 1  # by the server, not by each attempt


def test_a_budget_pauses_an_attempt_on_a_fleet_machine(project: FleetProject, tmp_path: Path) -> None:
    """The time budget ends while an attempt runs on m1: the pause file written there stops it before its
    next model call, and it comes back queued with no attempt spent."""
    code = str(Path(agent_runner.__file__).parents[1])  # the machine runs the code under test
    project.configure({"m1": {"env": {"PYTHONPATH": code}}}, run_for="1h")
    passed = tmp_path / "passed"  # the agent's first call is made: from then on the clock reads 2 h later
    wait = f"touch {passed}; until [ -e ../../runs/t/1/pause ]; do sleep 0.05; done"
    limits = {"minutes": 5, "attempt_minutes": 20}  # ends within the hour
    project.task("t", project.script("t", [bash_turn(wait), finish_turn()]), limits=limits)
    config = load_config(project.root)
    executor = SshExecutor.from_config(config)
    events: list[RunEvent] = []
    queue = open_queue(project.root, config)
    scheduler = Scheduler(queue, executor, config=config, root=project.root, on_event=events.append)
    scheduler.budget.clock = lambda: 1_900_000_000.0 + (7200 if passed.exists() else 0)
    try:
        summary = scheduler.run()
    finally:
        executor.close()
    paused = [e for e in events if e.kind == "paused"]
    assert [e.task for e in paused] == ["t"] and paused[0].result is not None
    assert paused[0].result.machine == "m1" and paused[0].result.model_calls == 1
    assert summary.budget_stop is not None and summary.budget_stop.n_paused == 1
    state = queue.refresh()["t"]
    assert state.status == "queued" and state.n_attempts_used == 0
