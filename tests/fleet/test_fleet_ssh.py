"""The SSH executor over namespace machines with real sshd: spreading, pins, results and branches."""

from __future__ import annotations

from fleet_helpers import FleetProject, git


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
