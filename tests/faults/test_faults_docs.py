"""The troubleshooting section: its runnable commands work as written, and its quoted messages are real."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from faults_helpers import Project, Scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"
RUNNABLE = {
    "run-agents --debug run",
    "run-agents --help",
    "run-agents list",
    "run-agents status",
    "run-agents run --dry-run",
    "run-agents run",
    "run-agents compact",
    "run-agents machines",
}


def test_troubleshooting_commands_run_as_written(project: Project, scenario: Scenario) -> None:
    """Every complete command the section shows runs in a project without a traceback."""
    shown = set(re.findall(r"`(run-agents [^`:]*)`", DOC.read_text(encoding="utf-8")))
    assert shown >= RUNNABLE, RUNNABLE - shown
    project.task("doc", project.edit_script("doc", "doc.py", "d = 1\n"))
    for command in sorted(RUNNABLE):
        argv = shlex.split(command)[1:]
        root = ["--root", str(project.root)]
        out = project.cli(*(argv[:1] + root + argv[1:] if argv[0] == "--debug" else root + argv))
        assert "Traceback" not in out.stderr, (command, out.stderr)
        assert out.returncode in (0, 1), (command, out.returncode, out.stderr)
        if command == "run-agents machines":  # the documented message for a config without machines
            assert "no machines configured" in out.stdout + out.stderr
    scenario.outcome = f"{len(RUNNABLE)} commands ran as written"


def test_troubleshooting_quotes_the_runners_own_messages() -> None:
    """Messages quoted in the section still occur in the code (a renamed message must update the docs)."""
    doc = DOC.read_text(encoding="utf-8")
    code = "\n".join(p.read_text(encoding="utf-8") for p in (DOC.parents[1] / "agent_runner").rglob("*.py"))
    for phrase in (
        "has no YAML front matter",
        "front matter must be a YAML mapping",
        "ids must be unique",
        "dependency cycle",
        "task files are limited to",
        "is a binary file",
        "is not valid UTF-8",
        "the disk is full; free space and run again",
        "fix or delete that line",
        "the call timed out after retries",
        "the API asked to wait",
        "the agent finished without changing any file",
        "too many infrastructure failures",
        "the branch stays local",
        "no GitHub token: set GITHUB_TOKEN or GH_TOKEN",
        "file system error under",
        "is not a branch or commit of",
        "is not a git repository: tasks branch off its commits",
        "has no commits yet",
        "git refused the commits in",
        "unknown model provider",
        "ran past its wall-clock limit",
        "past the attempt's wall-clock limit",
        "over the task's limit max_disk_mb",
        "the attempt filled the disk",
        "below min_free_mb",
        "the machine's disk is full under",
    ):
        assert phrase in doc, f"the section does not explain: {phrase}"
        assert phrase in code, f"the section quotes a message the code no longer prints: {phrase}"
