"""A model with no price has unknown cost and every view says so; a run with no model call cost a known $0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from run_helpers import Project, git

from agent_runner.cli.run_progress import TrajectoryProgress
from agent_runner.testing.scripts import finish_turn

WIDE = {"COLUMNS": "200"}


def invoke(project: Project, *args: str) -> Any:
    """Run the CLI in this process on a wide terminal; return its result."""
    from typer.testing import CliRunner

    from agent_runner.cli import get_app

    return CliRunner().invoke(get_app(), ["--root", str(project.root), *args], env=WIDE)


def listed(project: Project, task_id: str) -> dict[str, Any]:
    """Return the `list --json` row of `task_id`."""
    rows = json.loads(invoke(project, "list", "--json").stdout)
    return next(row for row in rows if row["id"] == task_id)


@pytest.fixture
def unpriced(project: Project) -> Project:
    """A project whose task `free` was run by a scripted model that reports no price (`run`'s table)."""
    project.task("free", project.edit_script("free", "free.py", "y = 1\n"))
    out = invoke(project, "run")
    assert out.exit_code == 0, out.output
    project.run_output = out.stdout  # type: ignore[attr-defined]
    return project


def test_run_summary_says_cost_unknown_and_how_a_budget_counts_it(unpriced: Project) -> None:
    """The closing line says `unknown`, not $0.0000, and warns that a budget counts it as $0."""
    out: str = unpriced.run_output  # type: ignore[attr-defined]
    assert "1 attempts, unknown," in out and "$0.0000" not in out, out
    assert "cost unknown for 1 attempt" in out and "counts them as $0" in out, out


def test_list_and_show_say_cost_unknown(unpriced: Project) -> None:
    """`list --json` has a null cost, the table a `?` with its legend, `show` says unknown."""
    row = listed(unpriced, "free")
    assert row["cost_usd"] is None and row["n_unknown_cost"] == 1 and row["cost_known_usd"] == 0, row
    table = invoke(unpriced, "list").stdout
    line = next(line for line in table.splitlines() if line.startswith("free"))
    assert " ? " in f"{line} " and "? = cost unknown" in table, table
    shown = invoke(unpriced, "show", "free").stdout
    assert any(line.split()[:2] == ["cost", "unknown"] for line in shown.splitlines()), shown


def test_status_and_report_say_cost_unknown(unpriced: Project) -> None:
    """`status` (text and JSON) and the HTML report say unknown, not $0.0000."""
    text = invoke(unpriced, "status").stdout
    assert "Cost so far: unknown" in text and "cost unknown for 1 attempt" in text, text
    data = json.loads(invoke(unpriced, "status", "--json").stdout)
    assert data["cost_usd"] is None and data["n_unknown_cost"] == 1, data
    out = invoke(unpriced, "report")
    html = (unpriced.root / out.stdout.strip()).read_text(encoding="utf-8")
    assert '<div class="num">unknown</div>' in html and 'id="unknown-cost"' in html
    assert '<td class="num">unknown</td>' in html


def test_run_json_summary_has_a_null_cost(project: Project) -> None:
    """`run --json`: the summary's cost is null, with the known part and the count of unknown attempts."""
    project.task("free", project.edit_script("free", "free.py", "y = 1\n"))
    lines = [json.loads(line) for line in invoke(project, "run", "--json").stdout.splitlines()]
    summary = next(line for line in lines if line.get("event") == "summary")
    assert summary["cost_usd"] is None and summary["n_unknown_cost"] == 1, summary
    assert summary["known_cost_usd"] == 0, summary
    finished = next(line for line in lines if line.get("event") == "finished")
    assert "cost_usd" in finished["result"] and finished["result"]["cost_usd"] is None, finished


def test_a_fix_lint_by_ruff_alone_cost_a_known_zero(project: Project) -> None:
    """No model call: $0 everywhere, never unknown."""
    (project.root / "messy.py").write_text("import os\n\nx = 1\n", encoding="utf-8")
    git(project.root, "add", "messy.py")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "messy")
    project.task("lint", project.script("lint", [finish_turn()]), kind="fix-lint", paths=["messy.py"])
    out = invoke(project, "run").stdout
    assert "1 finished" in out and "$0.0000" in out and "unknown" not in out, out
    row = listed(project, "lint")
    assert row["cost_usd"] == 0 and row["n_unknown_cost"] == 0, row
    assert "$0.00" in invoke(project, "list").stdout
    assert "$0.0000" in invoke(project, "show", "lint").stdout
    assert "Cost so far: $0.0000" in invoke(project, "status").stdout


def test_show_trajectory_of_an_aborted_attempt_says_it_was_aborted(project: Project) -> None:
    """A model outage ends the attempt with an `aborted` record: `show --trajectory` and the report say so,
    not 'still going'."""
    project.task("down", project.script("down", [{"error": "unavailable"}]), max_attempts=1)
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "infra_retries = 0\n", encoding="utf-8")
    git(project.root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "no retries")
    invoke(project, "run")
    text = invoke(project, "show", "down", "--trajectory").stdout
    assert "== aborted:" in text and "still going" not in text, text
    report = project.root / invoke(project, "report").stdout.strip()
    pages = "".join(p.read_text(encoding="utf-8") for p in report.parent.rglob("*.html"))
    assert "Aborted" in pages and "still going" not in pages


def test_the_live_table_reads_a_running_attempts_unpriced_call_as_unknown(tmp_path: Path) -> None:
    """While an attempt runs, a model call with no price makes its cost unknown, not $0 (the live table)."""
    path = tmp_path / "trajectory.jsonl"
    path.write_text(json.dumps({"type": "model", "cost_usd": 0.01}) + "\n")
    progress = TrajectoryProgress(path)
    assert progress.poll() == (1, 0.01) and not progress.is_cost_unknown
    with path.open("a") as fh:
        fh.write(json.dumps({"type": "model", "cost_usd": None}) + "\n")
    assert progress.poll()[0] == 2 and progress.is_cost_unknown
