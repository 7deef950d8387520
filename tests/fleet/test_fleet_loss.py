"""Machine loss over real sshd in namespaces: re-queue elsewhere, late results fenced, old attempts killed."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fleet_helpers import FleetProject

from agent_runner.config.runner import load_config
from agent_runner.coordinator.scheduler import Scheduler
from agent_runner.core.errors import ExecutorError, StaleAttemptError
from agent_runner.core.protocols import Slot
from agent_runner.core.result import TaskResult, WorkRequest
from agent_runner.core.task import Task
from agent_runner.executors.ssh import SshExecutor
from agent_runner.queue.intake import open_queue


def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll `predicate` until it is true or fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def pidfile(project: FleetProject, machine: str, task_id: str, attempt: int) -> Path:
    """Return where a machine keeps the pid of one attempt."""
    home = project.fleet.machines[machine].home
    return home / ".agent-runner-worker" / "attempts" / f"{task_id}.{attempt}.pid"


def group_alive(pgid: int) -> bool:
    """Return whether a process of the group still runs (zombies left to a non-reaping init do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_cut_link_requeues_on_other_machine_and_late_result_is_fenced(project: FleetProject) -> None:
    """A task whose machine is cut off finishes on the other; the late result from the first is rejected."""
    project.configure({"m1": {}, "m2": {}})
    project.task("lost", project.edit_script("lost", "out.txt", "done", delay_s=2.5))
    config = load_config(project.root)
    queue = open_queue(project.root, config)
    late: list[TaskResult] = []
    executor = SshExecutor.from_config(config, root=project.root)
    executor.on_late_result = late.append
    scheduler = Scheduler(queue, executor, config=config, root=project.root)
    runner = threading.Thread(target=scheduler.run, daemon=True)
    try:
        runner.start()
        wait_for(lambda: pidfile(project, "m1", "lost", 1).exists(), 20, "attempt 1 to start on m1")
        project.fleet.link_down("m1")
        runner.join(timeout=60)
        assert not runner.is_alive()
        wait_for(lambda: not pidfile(project, "m1", "lost", 1).exists(), 30, "attempt 1 to end on cut-off m1")
        project.fleet.link_up("m1")
        wait_for(lambda: bool(executor.slots() and late), 20, "the late result from m1")
    finally:
        executor.close()
    assert (late[0].task_id, late[0].attempt, late[0].machine) == ("lost", 1, "m1")
    with pytest.raises(StaleAttemptError):
        queue.finish("lost", 1, late[0].for_queue())
    events = project.queue_events()
    finished = [e for e in events if e["type"] == "finished"]
    assert [(e["attempt"], e["result"]["machine"]) for e in finished] == [(2, "m2")]
    released = [e for e in events if e["type"] == "released"]
    assert released[0]["attempt"] == 1 and released[0]["infra"] and "m1" in released[0]["reason"]
    assert queue.refresh()["lost"].spent == 0


def test_machines_check_reports_a_down_machine_and_the_queue_runs_on_the_other(project: FleetProject) -> None:
    """`machines check` names the unreachable machine; `run` still finishes every task on the live one."""
    project.configure({"m1": {}, "m2": {}})
    project.task("a", project.edit_script("a", "a.txt", "A"))
    project.task("b", project.edit_script("b", "b.txt", "B"))
    project.fleet.link_down("m2")
    check = project.cli("machines", "check", "--json")
    assert check.returncode == 1
    rows = {m["name"]: m for m in json.loads(check.stdout)["machines"]}
    assert rows["m1"]["is_reachable"] and not rows["m2"]["is_reachable"]
    assert rows["m1"]["runner_version"] == json.loads(check.stdout)["coordinator_version"]
    assert "m2" in check.stderr and rows["m2"]["error"]
    done = project.cli("run", "--no-publish", timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    machines = {e["result"]["machine"] for e in project.queue_events() if e["type"] == "finished"}
    assert machines == {"m1"}


def test_machines_check_reports_a_version_mismatch(project: FleetProject, tmp_path: Path) -> None:
    """A machine whose agent-runner version differs from the coordinator's is reported and fails the check."""
    fake = tmp_path / "old-python"
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.11.0" || echo 0.0.1\n')
    fake.chmod(0o755)
    project.configure({"m1": {"python": str(fake)}})
    check = project.cli("machines", "check", "--json")
    row = json.loads(check.stdout)["machines"][0]
    assert check.returncode == 1 and row["runner_version"] == "0.0.1" and row["version_mismatch"]
    table = project.cli("machines")
    assert "0.0.1" in table.stdout and "m1" in table.stderr


def test_machine_without_run_agents_gets_no_slots(project: FleetProject) -> None:
    """A machine where the configured run-agents command is missing is reported as unusable, with the fix."""
    project.configure({"m1": {"command": "/nowhere/run-agents"}})
    check = project.cli("machines", "check", "--json")
    row = json.loads(check.stdout)["machines"][0]
    assert check.returncode == 1 and not row["is_reachable"] and "not found there" in row["error"]


def _request(project: FleetProject, task_id: str, attempt: int, delay_s: float) -> WorkRequest:
    task = Task(id=task_id, kind="change", model=project.edit_script(task_id, "x.txt", "x", delay_s=delay_s))
    config = load_config(project.root).model_dump(mode="json", by_alias=True)
    return WorkRequest(task=task, attempt=attempt, repo=str(project.root), config=config)


def _run_in_thread(executor: SshExecutor, request: WorkRequest, slot: Slot) -> list[object]:
    out: list[object] = []

    def target() -> None:
        try:
            out.append(executor.run(request, slot))
        except ExecutorError as exc:
            out.append(exc)

    threading.Thread(target=target, daemon=True).start()
    return out


def attempt_groups(project: FleetProject, task_id: str, attempt: int) -> list[int]:
    """Wait until m1's pidfile of the attempt lists the shell's and the forked worker's groups."""
    path = pidfile(project, "m1", task_id, attempt)
    has_both = lambda: path.exists() and len(path.read_text().split()) == 2  # noqa: E731
    wait_for(has_both, 20, f"attempt {attempt} to start through the fork server")
    return [int(pid) for pid in path.read_text().split()]


def test_cancel_and_retry_kill_the_old_attempts_process_group(project: FleetProject) -> None:
    """Killing the ssh client leaves the remote attempt running; a retry kills it there; so does cancel. The
    next attempt's worker sweeps the checkouts of the killed ones (their locks are held by none)."""
    project.configure({"m1": {}})
    executor = SshExecutor.from_config(load_config(project.root), root=project.root)
    slot = executor.slots()[0]
    try:
        _run_in_thread(executor, _request(project, "slow", 1, 30), slot)
        groups = attempt_groups(project, "slow", 1)
        for _, proc in list(executor._running.values()):
            proc.kill()  # the coordinator's ssh client dies: the remote attempt does not
        time.sleep(1)
        assert all(map(group_alive, groups))
        second = _run_in_thread(executor, _request(project, "slow", 2, 30), slot)
        groups2 = attempt_groups(project, "slow", 2)
        assert not any(map(group_alive, groups))
        checkouts = project.fleet.machines["m1"].home / ".agent-runner-worker" / "checkouts"
        wait_for(lambda: (checkouts / "slow-2.lock").exists(), 20, "the live attempt's lock by its checkout")
        executor.cancel("slow", 2)
        wait_for(lambda: bool(second), 10, "the cancelled run to return")
        assert isinstance(second[0], ExecutorError) and not any(map(group_alive, groups2))
    finally:
        executor.close()
    fresh = SshExecutor.from_config(load_config(project.root), root=project.root)  # the old one lost m1
    try:
        assert isinstance(fresh.run(_request(project, "slow", 3, 0), fresh.slots()[0]), TaskResult)
    finally:
        fresh.close()
    left = sorted(p.name for p in checkouts.iterdir())
    assert not [name for name in left if name.startswith(("slow-1", "slow-2"))], left  # its worker swept them
