"""Running a gate's command: argv or shell string, a scrubbed environment, a timeout, an optional sandbox."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent_runner.core.protocols import Sandbox
from agent_runner.tools.capture import run_bounded
from agent_runner.tools.shell import PASSED_ENV, PASSED_PREFIXES
from agent_runner.tools.shell import SECRET_NAME as SHELL_SECRET_NAME

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


# What a test command inside the sandbox gets besides the shell's allowlist (tools/shell.PASSED_ENV):
# the interpreter's own settings. Nothing else of the worker's environment reaches the agent's code.
SANDBOXED_PREFIXES = (*PASSED_PREFIXES, "PYTHON")


def gate_env(
    extra: Mapping[str, str] | None = None, *, sandboxed: bool = False, withheld: Collection[str] = ()
) -> dict[str, str]:
    """Return the environment for gate commands.

    Outside a sandbox: the runner's, without secret-looking variables. Inside one (the gate runs the
    agent's code): only what the agent's shell gets (an allowlist) plus PYTHON* variables, never a
    secret-looking name nor one in `withheld` (the config's secret_env and forward_env); then `extra`,
    the gate's own variables.
    """
    if not sandboxed:
        env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
        env.update(extra or {})
        return env
    env = {
        k: v
        for k, v in os.environ.items()
        if (k in PASSED_ENV or k.startswith(SANDBOXED_PREFIXES))
        and not SHELL_SECRET_NAME.search(k)
        and not SECRET_NAME.search(k)
        and k not in withheld
    }
    env.setdefault("PATH", os.defpath)
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
    sandbox: Sandbox | None = None,
    stdin_text: str | None = None,
) -> CommandResult:
    """Run a command to completion and return its result; a timeout is a result, not an error.

    Each stream keeps its first and last MAX_OUTPUT_BYTES / 2 (tools/capture.py): a command printing gigabytes
    costs the runner no more memory than that."""
    argv = to_argv(command)
    shown = command if isinstance(command, str) else shlex.join(argv)
    if sandbox is not None:
        argv = sandbox.wrap(argv)
    env = dict(env) if env is not None else gate_env(sandboxed=sandbox is not None)
    try:
        ended = run_bounded(argv, cwd=cwd, env=env, timeout_s=timeout_s, stdin_text=stdin_text)
    except OSError as exc:
        return CommandResult(shown, 127, "", f"cannot run {argv[0]}: {exc.strerror}", 0.0)
    return CommandResult(
        shown, ended.exit_code, ended.stdout, ended.stderr, ended.duration_s, ended.timed_out
    )


def tail(text: str, n_lines: int = 30) -> str:
    """Return the last lines of a long output."""
    lines = text.strip().splitlines()
    return "\n".join(lines[-n_lines:])
