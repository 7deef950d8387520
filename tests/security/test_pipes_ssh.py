"""What the coordinator reads back from ssh is bounded: stdout refused past its limit, stderr's tail kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent_runner.config.machines import MachineConfig, SshConfig
from agent_runner.core.errors import ExecutorError
from agent_runner.executors.pipe import communicate_bounded
from agent_runner.executors.ssh_transport import SSH_LOST, SshClient

LIMIT = 1 << 20
FLOOD = "import sys\nwhile True:\n    sys.{stream}.buffer.write(b'x' * 65536)\n"


def python(code: str) -> subprocess.Popen[bytes]:
    """Start a Python child with pipes on stdin, stdout and stderr."""
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen([sys.executable, "-c", code], **pipes)  # type: ignore[call-overload, no-any-return]


def test_endless_stdout_is_refused_at_the_limit() -> None:
    """A process that prints without end is killed once its stdout passes the limit."""
    proc = python(FLOOD.format(stream="stdout"))
    with pytest.raises(ExecutorError, match=f"over {LIMIT} bytes"):
        communicate_bounded(proc, b"", limit=LIMIT)
    assert proc.returncode is not None and proc.returncode < 0  # killed, not left running


def test_stderr_keeps_only_its_tail() -> None:
    """Megabytes of stderr are read to the end but only the last part is kept."""
    code = "import sys\nsys.stderr.write('x' * 5_000_000 + 'END')\nsys.stdout.write(sys.stdin.read())\n"
    out, err = communicate_bounded(python(code), b"request", limit=LIMIT, err_limit=LIMIT)
    assert out == b"request" and len(err) <= LIMIT and err.endswith(b"xEND")


class ShellClient(SshClient):
    """An SshClient that runs its scripts with the local sh instead of over ssh."""

    def command_argv(self, script: str) -> list[str]:
        return ["sh", "-c", script]


def test_ssh_run_reports_an_over_limit_output(tmp_path: Path) -> None:
    """A remote script (a late result, say) printing too much ends as a lost connection, with the reason."""
    client = ShellClient(MachineConfig(name="m", ssh="m"), settings=SshConfig(), control_dir=tmp_path)
    done = client.run("yes", timeout_s=60, limit=LIMIT)
    assert done.returncode == SSH_LOST and f"over {LIMIT} bytes" in done.stderr.decode()
    assert client.run("echo hi; echo oops >&2; exit 3", timeout_s=60).returncode == 3
