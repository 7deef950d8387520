"""`sweep lint`: the expected fix-lint tasks, a second sweep that changes nothing it should not, and `run`
landing the model-free task with no key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweep_helpers import commit, git
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.core.task import load_task_file

EXPECTED = {  # id: (paths, needs a model, gain)
    "lint-ruff-fix": (["pkg/fixable.py"], False, 2),
    "lint-pkg-big-part-1": (["pkg/big.py"], True, 4),
    "lint-pkg-big-part-2": (["pkg/big.py"], True, 2),
    "lint-pkg-judgment": (["pkg/judgment.py"], True, 2),
    "lint-pkg-sub-files": (["pkg/sub/a.py", "pkg/sub/b.py"], True, 2),
}


def sweep(repo: Path, *args: str) -> dict[str, Any]:
    """Run `run-agents sweep ... --json` on `repo` in this process and return its report."""
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "sweep", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["task_id"]: row for row in report["tasks"]}


def test_lint_sweep_writes_one_task_per_group_and_a_model_free_one(repo: Path) -> None:
    """Fixable files make one model-free task; small files of a folder share one; a big file is split."""
    report = sweep(repo, "lint", "--per-task", "4")
    found = rows(report)
    assert {i: (r["paths"], r["needs_model"], r["gain"]) for i, r in found.items()} == {
        i: (paths, model, gain) for i, (paths, model, gain) in EXPECTED.items()
    }
    assert {r["outcome"] for r in found.values()} == {"new"}
    assert (report["n_parallel"], report["n_model_free"]) == (4, 1)
    assert report["tasks"][0]["task_id"] == "lint-pkg-big-part-1"  # the biggest gain first
    judgment = load_task_file(repo / "tasks" / "lint-pkg-judgment.md")
    assert "| pkg/judgment.py | 2 | 1 | 1 |" in judgment.instructions and judgment.priority == 2
    part = load_task_file(repo / "tasks" / "lint-pkg-big-part-2.md")
    assert part.allow_partial and "lines 6-7" in part.title and "missing_4" in part.instructions
    assert (
        git(repo, "status", "--porcelain", "--untracked-files=all", "--", "pkg") == ""
    )  # measured in scratch


def test_dry_run_prints_the_plan_and_writes_nothing(repo: Path) -> None:
    """`--dry-run` reports the same tasks as new and leaves no task file and no queue file."""
    report = sweep(repo, "lint", "--per-task", "4", "--dry-run")
    assert set(rows(report)) == set(EXPECTED) and report["dry_run"]
    assert not (repo / "tasks").exists()


def test_select_adds_rules_and_the_tasks_carry_them(repo: Path) -> None:
    """Rules the repo's config lacks find more; the tasks carry them (lint_select) and the sweep says so."""
    report = sweep(repo, "lint", "pkg/big.py", "--select", "T20", "--dry-run")
    assert report["figures"]["violations"] == 12  # 6 x F821 + 6 x T201 (print)
    assert any("T201" in note and "lint_select" in note for note in report["notes"])


def test_a_selected_rule_ruff_fixes_lands_keyless(repo: Path) -> None:
    """A rule outside the repo's config that ruff --fix clears (UP039, `class A():`) makes a model-free task
    whose run fixes it with no key: the task's ruff runs with the rule, not the repo's config alone."""
    commit(repo, {"pkg/old.py": "class A():\n    pass\n"}, "old style")
    sweep(repo, "lint", "pkg/old.py", "--select", "UP")
    task = load_task_file(repo / "tasks" / "lint-ruff-fix.md")
    assert task.paths == ["pkg/old.py"] and task.lint_select == ["UP"]
    ran = CliRunner().invoke(get_app(), ["--root", str(repo), "run", "--only", "lint-ruff-fix"])
    assert ran.exit_code == 0, ran.output
    assert git(repo, "show", "agent/lint-ruff-fix:pkg/old.py").startswith("class A:\n")


def test_select_refuses_what_is_not_a_rule(repo: Path) -> None:
    """An option smuggled in as a rule is a usage error; nothing is written."""
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "sweep", "lint", "--select", "--config=x"])
    assert result.exit_code == 2 and "not a ruff rule" in result.output
    assert not (repo / "tasks").exists()


def test_second_sweep_after_a_keyless_run_changes_nothing_it_should_not(repo: Path) -> None:
    """`run` lands the model-free task with no key; sweeping again leaves it alone and rewrites no file; once
    a fix is committed, the shrunken folder task keeps its id and is updated."""
    sweep(repo, "lint", "--per-task", "4")
    ran = CliRunner().invoke(get_app(), ["--root", str(repo), "run", "--only", "lint-ruff-fix"])
    assert ran.exit_code == 0, ran.output
    assert "import" not in git(repo, "show", "agent/lint-ruff-fix:pkg/fixable.py")
    files = {p.name: p.read_bytes() for p in (repo / "tasks").glob("*.md")}
    queue = (repo / "tasks" / "queue.jsonl").read_bytes()

    again = rows(sweep(repo, "lint", "--per-task", "4"))
    assert (
        again["lint-ruff-fix"]["outcome"] == "left alone" and again["lint-ruff-fix"]["status"] == "finished"
    )
    assert {r["outcome"] for i, r in again.items() if i != "lint-ruff-fix"} == {"unchanged"}
    assert {p.name: p.read_bytes() for p in (repo / "tasks").glob("*.md")} == files
    assert (repo / "tasks" / "queue.jsonl").read_bytes() == queue

    commit(repo, {"pkg/sub/a.py": "def three():\n    return 3\n"}, "fix a")
    third = sweep(repo, "lint", "--per-task", "4")
    assert rows(third)["lint-pkg-sub-files"]["outcome"] == "updated"
    assert load_task_file(repo / "tasks" / "lint-pkg-sub-files.md").paths == ["pkg/sub/b.py"]
    assert "stale" not in {r["outcome"] for r in third["tasks"]}
