"""The agent's own `bash` tool (make_tools + tool_env + get_sandbox), run by a worker holding secrets."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agent_runner.worker.sandbox import probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)
# A stand-in for the worker: a process whose own environment holds the keys, building the agent's tools the
# way the job does and running one bash command through them.
WORKER = """
import json, sys
from pathlib import Path
from agent_runner.worker.sandbox import get_sandbox
from agent_runner.tools import make_tools, tool_env
checkout, mode, command = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sandbox = get_sandbox(mode, checkout=checkout, network=False)
tools = make_tools(checkout, env=tool_env(), sandbox=sandbox)
print(tools["bash"].run({"command": command}))
"""
ANCESTORS = r"""p=$$; while [ -n "$p" ] && [ "$p" -gt 0 ]; do
  tr '\0' '\n' < /proc/$p/environ 2>/dev/null; p=$(awk '{print $4}' /proc/$p/stat 2>/dev/null); done
for f in /proc/[0-9]*/environ; do tr '\0' '\n' < "$f" 2>/dev/null; done; echo walked"""


def run_worker(checkout: Path, mode: str, command: str, secret: str) -> str:
    """Run one agent bash command from a worker process whose environment holds `secret` as keys."""
    env = {**os.environ, "ANTHROPIC_API_KEY": secret, "GITHUB_TOKEN": secret, "HOME": str(checkout.parent)}
    argv = [sys.executable, "-c", WORKER, str(checkout), mode, command]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """An empty checkout folder."""
    path = tmp_path / "checkout"
    path.mkdir()
    return path


def test_agent_bash_cannot_read_worker_secrets(checkout: Path) -> None:
    """Through the real tool, `env` and every ancestor's /proc environ hide keys the worker holds."""
    secret = f"sk-worker-{uuid.uuid4().hex}"
    unconfined = run_worker(checkout, "none", f"env; {ANCESTORS}", secret)
    assert secret in unconfined  # the worker's own environ is readable without the sandbox
    confined = run_worker(checkout, "bwrap", f"env; {ANCESTORS}", secret)
    assert "walked" in confined and secret not in confined


def test_agent_bash_is_confined(checkout: Path, tmp_path: Path) -> None:
    """Through the real tool: the checkout is writable, a sibling folder is not, nor the host's listener."""
    outside = tmp_path / "outside"
    outside.mkdir()
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        command = (
            f"echo ok > made.txt; echo x > {outside}/escaped.txt; "
            f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED || echo refused"
        )
        out = run_worker(checkout, "bwrap", command, "unused-secret-1")
    finally:
        server.close()
    assert (checkout / "made.txt").read_text() == "ok\n"
    assert not (outside / "escaped.txt").exists()
    assert "refused" in out and "CONNECTED" not in out
    assert "[exit code" in out  # the tool's normal answer, so the command really ran through it
