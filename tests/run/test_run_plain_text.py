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


def test_plan_and_live_tables_print_brackets_as_written() -> None:
    """A note naming [tool.agent-runner], a worker named box[gpu]/1 and a stray [/x] print as written."""
    from rich.console import Console

    from agent_runner.cli.run_view import plan_table
    from agent_runner.coordinator.planning import PlanRow

    row = PlanRow("t[1]", "change", "held", "box[gpu]/1", "m", {}, note="set [tool.agent-runner] model; [/x]")
    console = Console(record=True, width=300)
    console.print(plan_table([row]))
    text = console.export_text()
    assert "[tool.agent-runner]" in text and "[/x]" in text and "box[gpu]/1" in text and "t[1]" in text


def test_without_a_terminal_run_prints_a_line_per_event_and_the_summary_on_its_own(project: Project) -> None:
    """Piped (a log, CI): no redrawn table; one line per event; the summary starts a line of its own."""
    import re

    project.task("greet", project.edit_script("greet", "greet.py", "print('hi')\n"))
    out = project.cli("run")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d started +greet#1 on local-1.*", line) for line in lines), lines
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d finished +greet#1.*", line) for line in lines), lines
    assert any(line.startswith("1 finished") for line in lines), lines
    assert "┏" not in out.stdout
