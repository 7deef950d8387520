"""Text from task files and models reaches the terminal as written: brackets are not rich markup."""

from __future__ import annotations

from run_helpers import Project

from agent_runner.testing.scripts import bash_turn, finish_turn, write_command


def test_exec_prints_the_agents_summary_with_its_brackets(project: Project) -> None:
    """`exec` without --json prints the summary, `[noqa]` and `[/x]` included (markup would eat or crash)."""
    summary = "Removed the [noqa] marks, kept [tool.ruff] as is [/x]"
    spec = project.script("marks", [bash_turn(write_command("marks.py", "x = 1\n")), finish_turn(summary)])
    project.task("marks", spec)
    out = project.cli("exec", "tasks/marks.md")
    assert out.returncode == 0, out.stderr
    assert f"\n  summary: {summary}\n" in out.stdout
