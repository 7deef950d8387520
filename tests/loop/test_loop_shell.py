"""The bash tool: real subprocesses in a tmp checkout."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from agent_runner.core.errors import ToolError
from agent_runner.tools.shell import BashTool, cap_output, tool_env


def _bash(checkout: Path, **kwargs: object) -> BashTool:
    return BashTool(checkout, env=tool_env(), **kwargs)  # type: ignore[arg-type]


def _gone(pid: int, within_s: float = 3.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return True  # a zombie is dead; only its parent has not reaped it yet
        time.sleep(0.05)
    return False


def test_merges_streams_and_reports_exit_code(tmp_path: Path) -> None:
    """stdout and stderr come back together, followed by the exit code."""
    out = _bash(tmp_path).run({"command": "echo to-out; echo to-err >&2; exit 3"})
    assert "to-out" in out and "to-err" in out
    assert out.endswith("[exit code: 3]")


def test_runs_in_checkout_with_stdin_closed(tmp_path: Path) -> None:
    """The working directory is the checkout and reading stdin ends at once instead of hanging."""
    out = _bash(tmp_path, timeout_s=5).run({"command": "pwd; cat; echo read-done"})
    assert str(tmp_path) in out and "read-done" in out and "[exit code: 0]" in out


def test_non_interactive_environment(tmp_path: Path) -> None:
    """Pagers, editors and git prompts are disabled in the tool's environment."""
    out = _bash(tmp_path).run(
        {"command": 'echo "$PAGER $GIT_PAGER $GIT_TERMINAL_PROMPT $GIT_EDITOR $CI $TERM"'}
    )
    assert out.startswith("cat cat 0 true 1 dumb")


def test_timeout_kills_grandchildren(tmp_path: Path) -> None:
    """A timed-out command's whole process group dies, including a background sleep grandchild."""
    started = time.monotonic()
    out = _bash(tmp_path).run({"command": "(sleep 60 & echo $! > pid; wait); echo never", "timeout": 1})
    assert time.monotonic() - started < 10
    assert "timed out after 1 s" in out and "never" not in out
    assert _gone(int((tmp_path / "pid").read_text()))


def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    """A command that ignores SIGTERM is killed with SIGKILL after the grace period."""
    tool = _bash(tmp_path, kill_grace_s=0.3)
    started = time.monotonic()
    out = tool.run({"command": "trap '' TERM; sleep 60 & echo $! > pid; wait", "timeout": 0.5})
    assert "timed out" in out and time.monotonic() - started < 10
    assert _gone(int((tmp_path / "pid").read_text()))


def test_background_processes_stopped_after_command(tmp_path: Path) -> None:
    """A command that leaves a process running returns promptly and the process is stopped."""
    started = time.monotonic()
    out = _bash(tmp_path).run({"command": "sleep 60 > /dev/null & echo $! > pid; echo started"})
    assert "started" in out and "[exit code: 0]" in out
    assert time.monotonic() - started < 10
    assert _gone(int((tmp_path / "pid").read_text()))


@pytest.mark.parametrize(("last", "unit"), [(5000, "characters"), (100000, "bytes")])
def test_output_capped_keeping_head_and_tail(tmp_path: Path, last: int, unit: str) -> None:
    """Long output keeps its head and tail within about 10k characters and says what was cut."""
    out = _bash(tmp_path).run({"command": f"seq 1 {last}"})
    assert len(out) < 10_300
    assert out.startswith("1\n2\n3\n") and f"\n{last}\n[exit code: 0]" in out
    assert unit in out and "cut from the middle" in out


def test_huge_output_is_bounded_in_memory(tmp_path: Path) -> None:
    """Hundreds of megabytes of output are streamed through and cut, not buffered."""
    out = _bash(tmp_path).run({"command": "head -c 50000000 /dev/zero | tr '\\0' x; echo; echo END"})
    assert "bytes cut from the middle" in out and "END" in out and len(out) < 10_300


def test_cap_output_leaves_short_text_alone() -> None:
    """Text under the limit is returned unchanged."""
    assert cap_output("short", 100) == "short"


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"command": "  "},
        {"command": 5},
        {"command": "ls", "timeout": -1},
        {"command": "ls", "timeout": "x"},
    ],
)
def test_bad_arguments_are_tool_errors(tmp_path: Path, arguments: dict[str, object]) -> None:
    """A missing command or a bad timeout is reported to the agent as a ToolError."""
    with pytest.raises(ToolError):
        _bash(tmp_path).run(arguments)


def test_secrets_absent_from_tool_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """API keys and tokens set in the worker's environment never reach the agent's shell."""
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-secret-value-1",
        "OPENAI_API_KEY": "sk-secret-value-2",
        "GITHUB_TOKEN": "ghp_secret-value-3",
        "AWS_SECRET_ACCESS_KEY": "secret-value-4",
        "SOME_SERVICE_PASSWORD": "secret-value-5",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    env = tool_env({"GH_TOKEN": "secret-value-6", "MY_SETTING": "kept"})
    assert not set(env) & {*secrets, "GH_TOKEN"}
    assert env["MY_SETTING"] == "kept" and env["PATH"] and env["HOME"] == os.environ["HOME"]
    out = BashTool(tmp_path, env=env).run({"command": "env; cat /proc/self/environ"})
    assert "secret-value" not in out


class _MarkingSandbox:
    name = "marking"

    def wrap(self, argv: list[str]) -> list[str]:
        return ["env", "SANDBOXED=yes", *argv]


def test_sandbox_wraps_the_command(tmp_path: Path) -> None:
    """With a sandbox, the command runs through the argv the sandbox returns."""
    out = BashTool(tmp_path, env=tool_env(), sandbox=_MarkingSandbox()).run({"command": "echo $SANDBOXED"})
    assert out.startswith("yes")


def test_timeout_given_as_text_is_accepted(tmp_path: Path) -> None:
    """A numeric timeout sent as a string (common with small models) works."""
    assert "timed out after 0.5 s" in _bash(tmp_path, kill_grace_s=0.2).run(
        {"command": "sleep 5", "timeout": "0.5"}
    )
