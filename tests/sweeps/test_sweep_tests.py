"""`sweep tests`: the repo's tests run once with coverage; one write-tests task per module under the line."""

from __future__ import annotations

from pathlib import Path

from sweep_helpers import git
from test_sweep_lint import rows, sweep

from agent_runner.core.task import TaskKind, load_task_file


def test_tests_sweep_writes_a_task_for_the_module_under_the_line(repo: Path) -> None:
    """cov/low.py (4 of 10 statements run) gets a task with its missing lines; cov/full.py none; a second
    sweep changes nothing."""
    report = sweep(repo, "tests", "cov", "--below", "80")
    assert list(rows(report)) == ["tests-cov-low"]
    row = rows(report)["tests-cov-low"]
    assert (row["paths"], row["gain"], row["outcome"]) == (["cov/low.py"], 4, "new")  # 8 of 10 needed, 4 run
    task = load_task_file(repo / "tasks" / "tests-cov-low.md")
    assert task.kind == TaskKind.WRITE_TESTS and task.target_coverage == 80 and task.priority == 4
    assert "runs 4 of its 10 statements (40.0%)" in task.instructions
    assert "Lines no test runs: 4-6, 10-12" in task.instructions
    assert any("outside any sandbox" in note for note in report["notes"])
    assert git(repo, "status", "--porcelain", "--", "cov", "tests") == ""

    queue = (repo / "tasks" / "queue.jsonl").read_bytes()
    assert rows(sweep(repo, "tests", "cov", "--below", "80"))["tests-cov-low"]["outcome"] == "unchanged"
    assert (repo / "tasks" / "queue.jsonl").read_bytes() == queue


def test_whole_repo_sweep_puts_the_biggest_gap_first(repo: Path) -> None:
    """Over the whole repo the never-imported lint modules come first, cov/low.py after them."""
    order = [row["task_id"] for row in sweep(repo, "tests", "--dry-run")["tasks"]]
    assert order[0] == "tests-pkg-big" and "tests-cov-low" in order and "tests-cov-full" not in order
    assert not (repo / "tasks").exists()
