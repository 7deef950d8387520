"""What `list`, `show` and `diff` print about a task: attempts spent, gates, findings, the change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_runner.cli import get_app
from agent_runner.queue.store import Queue


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An empty git repository."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


def ok(repo: Path, *args: str) -> str:
    """Invoke a command in-process with --root `repo`; it must succeed; return its stdout."""
    result = CliRunner().invoke(get_app(), ["--root", str(repo), *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def queue_of(repo: Path) -> Queue:
    return Queue(repo / "tasks" / "queue.jsonl")


def run_attempt(queue: Queue, task_id: str, end: str, result: dict[str, object] | None = None) -> int:
    """Claim `task_id` and end that attempt with `end` (infra, fail or finish); return its number."""
    claim = queue.claim("w", lease_s=60, accept=lambda s: s.id == task_id)
    assert claim is not None
    if end == "infra":
        queue.release(claim.task_id, claim.attempt, "machine lost")
    elif end == "fail":
        queue.fail(claim.task_id, claim.attempt, "gates failed", result=result)
    else:
        queue.finish(claim.task_id, claim.attempt, result or {"outcome": "accepted"})
    return claim.attempt


def test_attempts_are_the_spent_ones_not_the_counter(repo: Path) -> None:
    """Re-runs after infrastructure failures do not count: list, list --json and show say used / max."""
    ok(repo, "add", "change", "-m", "Swap os.path for pathlib", "--id", "pathlib-utils")
    queue = queue_of(repo)
    for _ in range(4):
        run_attempt(queue, "pathlib-utils", "infra")
    row = json.loads(ok(repo, "list", "--json"))[0]
    assert (row["attempts"], row["max_attempts"], row["attempt"]) == (0, 3, 4)
    assert " 0/3 " in ok(repo, "list")
    assert "0 of 3 (latest #4; 4 re-runs" in ok(repo, "show", "pathlib-utils")
    assert run_attempt(queue, "pathlib-utils", "fail") == 5
    run_attempt(queue, "pathlib-utils", "finish")
    row = json.loads(ok(repo, "list", "--json"))[0]
    assert (row["status"], row["attempts"], row["attempt"]) == ("finished", 2, 6)
    assert json.loads(ok(repo, "show", "pathlib-utils", "--json"))["task"]["attempts_used"] == 2


def test_a_running_attempt_counts(repo: Path) -> None:
    """The attempt under way is one of the used ones; cancel names used / max, not the counter."""
    ok(repo, "add", "change", "-m", "x", "--id", "busy")
    queue = queue_of(repo)
    run_attempt(queue, "busy", "infra")
    assert queue.claim("w", lease_s=60) is not None
    assert json.loads(ok(repo, "list", "--json"))[0]["attempts"] == 1
    assert "(was running, attempts 1 of 3)" in ok(repo, "cancel", "busy")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def committed_repo(repo: Path) -> str:
    """Give `repo` one commit holding calc.py; return its id."""
    (repo / "calc.py").write_text("def add(a, b):\n    return a+b\n")
    git(repo, "add", "calc.py")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    return git(repo, "rev-parse", "HEAD")


def land_branch(repo: Path, branch: str) -> str:
    """Make `branch` one commit on HEAD that formats calc.py; return its head (HEAD stays where it was)."""
    git(repo, "checkout", "-qb", branch)
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "agent")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-")
    return head


GATES = [
    {"name": "lint-targets", "verdict": "pass", "before": {"violations": 2.0}, "after": {"violations": 0.0},
     "details": "0 violation(s) left; per rule: E225 [noqa] 2->0"},
    {"name": "tests", "verdict": "fail", "before": {"passed": 4.0}, "after": {"passed": 3.0},
     "details": "1 test(s) that passed at baseline no longer pass"},
]  # fmt: skip


def test_show_prints_gates_branch_and_the_diff_command(repo: Path) -> None:
    """A finished task's show has its gate table and branch, and `run-agents diff ID` prints its diff."""
    base = committed_repo(repo)
    ok(repo, "add", "change", "-m", "Format calc.py", "--id", "fmt")
    head = land_branch(repo, "agent/fmt")
    result = {"outcome": "accepted", "gates": GATES, "base_commit": base, "head_commit": head,
              "branch": "agent/fmt", "attempt": 1}  # fmt: skip
    run_attempt(queue_of(repo), "fmt", "finish", result)
    shown = ok(repo, "show", "fmt")
    assert "Gates of attempt 1" in shown
    assert "lint-targets" in shown and "violations 2 -> 0" in shown and "E225 [noqa] 2->0" in shown
    assert "tests" in shown and "fail" in shown and "passed 4 -> 3" in shown
    assert f"Branch agent/fmt at {head[:12]} (base {base[:12]})" in shown
    assert "Look at the change: run-agents diff fmt" in shown
    change = ok(repo, "diff", "fmt")
    assert "-    return a+b\n+    return a + b\n" in change and change.startswith("diff --git a/calc.py")
    assert "1 file changed, 1 insertion(+), 1 deletion(-)" in ok(repo, "diff", "fmt", "--stat")


def test_diff_without_a_branch_says_why(repo: Path) -> None:
    """`diff` of a task that made no branch yet is an error naming the branch and the task's status."""
    committed_repo(repo)
    ok(repo, "add", "change", "-m", "x", "--id", "waiting")
    result = CliRunner().invoke(get_app(), ["--root", str(repo), "diff", "waiting"])
    assert result.exit_code == 1
    assert "no branch agent/waiting in" in str(result.exception) and "waiting is queued" in str(
        result.exception
    )


def test_show_prints_a_reviews_verdict_and_findings(repo: Path) -> None:
    """A review's show lists its verdict and each finding as file:line, severity, text (from its summary)."""
    base = committed_repo(repo)
    ok(repo, "add", "review", "-m", "Review calc.py", "--id", "rev")
    answer = {"verdict": "request_changes", "findings": [
        {"file": "calc.py", "line": 2, "severity": "major", "explanation": "add() has no [tool.ruff] check"},
        {"file": "calc.py", "severity": "nit", "explanation": "no docstring"},
    ]}  # fmt: skip
    result = {
        "outcome": "accepted",
        "summary": json.dumps(answer),
        "base_commit": base,
        "branch": "agent/rev",
    }
    run_attempt(queue_of(repo), "rev", "finish", result)
    shown = ok(repo, "show", "rev")
    assert "Review verdict: request_changes" in shown
    assert "calc.py:2" in shown and "major" in shown and "add() has no [tool.ruff] check" in shown
    assert "nit" in shown and "no docstring" in shown
    assert f"Reviewed agent/rev at {base[:12]}" in shown


def test_user_text_is_printed_as_written_not_as_markup(repo: Path) -> None:
    """Brackets in titles, instructions, reasons and summaries reach the screen (markup would eat them)."""
    title = "Drop [noqa] and [skip] marks [/x]"
    ok(repo, "add", "change", "--title", title, "-m", "Read [tool.ruff] first", "--id", "marks")
    queue = queue_of(repo)
    result = {"outcome": "rejected", "summary": "kept [delete-tests] out", "attempt": 1}
    run_attempt(queue, "marks", "fail", result)
    listing = ok(repo, "list")
    assert title in listing
    shown = ok(repo, "show", "marks")
    assert title in shown and "Read [tool.ruff] first" in shown and "kept [delete-tests] out" in shown
    assert "Cancelled marks" in ok(repo, "cancel", "marks")


def test_show_prints_the_cost_as_money_not_a_float() -> None:
    """A cost summed from calls (0.008983999999999999) reads as 0.0090 in show, as in list."""
    from rich.console import Console

    from agent_runner.cli.task_views import detail_table
    from agent_runner.queue.state import TaskState

    console = Console(record=True, width=200)
    console.print(
        detail_table(
            TaskState(id="t", task_json={"id": "t", "kind": "change"}, cost_usd=0.008983999999999999)
        )
    )
    text = console.export_text()
    assert "0.0090" in text and "0.00898399" not in text


def test_show_names_a_script_by_its_file_as_the_report_does() -> None:
    """The demo's model field is a long scripted path: `show` prints its label, not the path."""
    from rich.console import Console

    from agent_runner.cli.task_views import detail_table
    from agent_runner.queue.state import TaskState
    from agent_runner.report.labels import RECORDED_SCRIPTS

    spec = f"scripted:{RECORDED_SCRIPTS / 'lint-legacy.yaml'}"
    console = Console(record=True, width=300)
    console.print(detail_table(TaskState(id="t", task_json={"id": "t", "kind": "change", "model": spec})))
    text = console.export_text()
    assert "recorded:lint-legacy.yaml" in text and str(RECORDED_SCRIPTS) not in text
