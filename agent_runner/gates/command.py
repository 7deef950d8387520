"""Running a gate's command: argv or shell string, a scrubbed environment, a timeout, an optional sandbox."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
SHELL_CHARS = set("|&;<>()$`*?[]{}~\n")
DEFAULT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class CommandResult:
    """What a command printed and how it ended."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def output(self) -> str:
        """Stdout and stderr together."""
        return (self.stdout + "\n" + self.stderr).strip()


def gate_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for gate commands: the runner's, without secret-looking variables."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.update(extra or {})
    return env


def to_argv(command: str | Sequence[str]) -> list[str]:
    """Split a command string; strings with shell syntax run under bash -c."""
    if not isinstance(command, str):
        return list(command)
    if SHELL_CHARS & set(command):
        return ["bash", "-c", command]
    return shlex.split(command)


def run_command(
    command: str | Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    sandbox: Any = None,
    stdin_text: str | None = None,
) -> CommandResult:
    """Run a command to completion and return its result; a timeout is a result, not an error."""
    argv = to_argv(command)
    shown = command if isinstance(command, str) else shlex.join(argv)
    if sandbox is not None:
        argv = sandbox.wrap(argv)
    start = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else gate_env(),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return CommandResult(shown, -1, out, f"timed out after {timeout_s:.0f} s", timeout_s, timed_out=True)
    except OSError as exc:
        return CommandResult(shown, 127, "", f"cannot run {argv[0]}: {exc.strerror}", 0.0)
    return CommandResult(shown, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def tail(text: str, n_lines: int = 30) -> str:
    """Return the last lines of a long output."""
    lines = text.strip().splitlines()
    return "\n".join(lines[-n_lines:])
