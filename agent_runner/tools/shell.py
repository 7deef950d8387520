"""The `bash` tool: one shell command in the checkout, non-interactive, time-boxed, output capped."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runner.core.errors import ToolError
from agent_runner.core.messages import ToolSpec
from agent_runner.core.protocols import Sandbox

PASSED_ENV = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR",
    "VIRTUAL_ENV", "CONDA_PREFIX", "JAVA_HOME", "GOPATH", "GOROOT", "CARGO_HOME", "RUSTUP_HOME",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
)  # fmt: skip
PASSED_PREFIXES = ("LC_",)
NON_INTERACTIVE = {
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "DEBIAN_FRONTEND": "noninteractive",
    "CI": "1",
    "TERM": "dumb",
    "NO_COLOR": "1",
    "PIP_NO_INPUT": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
# Names that look like credentials never reach the agent's shell, not even through `extra`.
SECRET_NAME = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|COOKIE)(_|$)", re.I
)

BASH_SPEC = ToolSpec(
    name="bash",
    description=(
        "Run one bash command in the repository checkout (the working directory) and return its combined "
        "stdout and stderr and its exit code. The shell is non-interactive: stdin is closed, pagers and "
        "editors are disabled, nothing may prompt. Each call is a fresh shell (cd and exports do not carry "
        "over; chain with &&). Processes left running in the background are stopped when the command "
        "returns. Long output is cut in the middle; narrow it with grep, head or tail."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The bash command to run."},
            "timeout": {
                "type": "integer",
                "description": "Seconds before the command is killed (default 120).",
            },
        },
        "required": ["command"],
    },
)


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the agent shell's environment: allowlisted variables, non-interactive settings, `extra`."""
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)}
    env.setdefault("PATH", os.defpath)
    env.update(NON_INTERACTIVE)
    env.update(extra or {})
    return {k: v for k, v in env.items() if not SECRET_NAME.search(k)}


def cap_output(text: str, limit: int) -> str:
    """Return `text` cut to about `limit` characters, keeping head and tail with a note of what was cut."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 2], text[len(text) - limit // 2 :]
    n_cut = len(text) - len(head) - len(tail)
    n_lines = text.count("\n", len(head), len(text) - len(tail))
    return f"{head}\n[... {n_cut} characters ({n_lines} lines) cut from the middle ...]\n{tail}"


class _Collector:
    """Reads a pipe to EOF keeping only the first and last `keep` bytes, so huge output costs no memory."""

    def __init__(self, stream: Any, keep: int) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.n_bytes = 0
        self._stream, self._keep = stream, keep
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while chunk := self._stream.read1(65536):
            self.n_bytes += len(chunk)
            room = self._keep - len(self.head)
            self.head += chunk[:room] if room > 0 else b""
            self.tail += chunk[max(room, 0) :]
            del self.tail[: max(len(self.tail) - self._keep, 0)]
        self._stream.close()

    def text(self, limit: int) -> str:
        """Return what was read, cut to about `limit` characters with a note of what was cut."""
        n_dropped = self.n_bytes - len(self.head) - len(self.tail)
        if not n_dropped:
            return cap_output(_decode(self.head + self.tail), limit)
        head, tail = _decode(self.head)[: limit // 2], _decode(self.tail)[-(limit // 2) :]
        n_cut = self.n_bytes - len(head.encode()) - len(tail.encode())
        return f"{head}\n[... about {n_cut} bytes cut from the middle ...]\n{tail}"


def _decode(data: bytearray) -> str:
    return bytes(data).decode("utf-8", errors="replace")


class BashTool:
    """Runs shell commands in a checkout, each in its own process group that is killed afterwards."""

    spec = BASH_SPEC

    def __init__(
        self,
        checkout: Path,
        *,
        env: Mapping[str, str],
        sandbox: Sandbox | None = None,
        timeout_s: float = 120.0,
        max_timeout_s: float = 600.0,
        max_chars: int = 10_000,
        kill_grace_s: float = 2.0,
    ) -> None:
        self.checkout = checkout
        self.env = dict(env)
        self.sandbox = sandbox
        self.timeout_s, self.max_timeout_s = timeout_s, max_timeout_s
        self.max_chars, self.kill_grace_s = max_chars, kill_grace_s
        self.deadline: float | None = None  # time.monotonic() value; the agent sets it from its time limit

    def run(self, arguments: dict[str, Any]) -> str:
        """Run `arguments["command"]` and return its output followed by the exit code."""
        command = arguments.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("bash needs a non-empty 'command' string")
        timeout = self._timeout(arguments.get("timeout"))
        argv = ["bash", "-c", command]
        output, code, timed_out = self._execute(self.sandbox.wrap(argv) if self.sandbox else argv, timeout)
        body = output.removesuffix("\n") or "(no output)"
        if timed_out:
            return (
                f"{body}\n[timed out after {round(timeout, 1):g} s: the command and its children were killed]"
            )
        return f"{body}\n[exit code: {code}]"

    def _timeout(self, raw: Any) -> float:
        try:
            asked = None if raw is None or isinstance(raw, bool) else float(raw)  # small models send "30"
        except ValueError:
            asked = -1.0
        if raw is not None and (asked is None or not asked > 0):
            raise ToolError(f"'timeout' must be a positive number of seconds, not {raw!r}")
        timeout = self.timeout_s if asked is None else min(asked, self.max_timeout_s)
        if self.deadline is not None:
            timeout = min(timeout, max(self.deadline - time.monotonic(), 1.0))
        return timeout

    def _execute(self, argv: list[str], timeout: float) -> tuple[str, int | None, bool]:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=self.checkout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolError(f"cannot start the shell: {exc}") from exc
        collector = _Collector(proc.stdout, keep=self.max_chars * 4)
        try:
            code = _wait(proc, timeout)
        finally:
            self._kill_group(proc)
        collector.thread.join(timeout=5)
        return collector.text(self.max_chars), code, code is None

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """Stop every process left in the command's group: SIGTERM, then SIGKILL after a grace period."""
        if not _signal_group(proc.pid, signal.SIGTERM):
            proc.wait()
            return
        deadline = time.monotonic() + self.kill_grace_s
        while time.monotonic() < deadline and _group_alive(proc):
            time.sleep(0.02)
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Return the command's exit code, or None after `timeout` s; blocks on a pidfd rather than polling."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux >= 5.3: Popen.wait polls (sleeps of 0.5 ms and up)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return proc.wait() if ready else None


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; return False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Return whether a process of the group still runs (zombies do not count)."""
    proc.poll()  # a container's init may never reap orphaned zombies, so they are skipped below
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return _signal_group(proc.pid, 0)
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(proc.pid) and fields[0] not in ("Z", "X"):
            return True
    return False
