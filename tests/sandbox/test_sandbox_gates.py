"""The test gates run the agent's tests inside the same sandbox as its shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from agent_runner.core.protocols import GateContext
from agent_runner.core.task import Task
from agent_runner.gates.pytest import run_tests
from agent_runner.worker.sandbox import get_sandbox, probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None, reason="bubblewrap is not installed or cannot run here"
)


def make_checkout(tmp_path: Path, outside: Path) -> Path:
    """Return a git checkout whose one test tries to write `outside`."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    test = f"def test_escape():\n    open({str(outside)!r}, 'w').write('escaped')\n"
    (checkout / "test_escape.py").write_text(test)
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    return checkout


@pytest.mark.parametrize("is_sandboxed", [True, False])
def test_gate_runs_agent_tests_sandboxed(tmp_path: Path, is_sandboxed: bool) -> None:
    """An agent's test cannot write outside the checkout when a gate runs it (control: no sandbox)."""
    outside = Path("/var/tmp") / f"agent-runner-escape-{uuid.uuid4().hex}"  # outside the private /tmp too
    checkout = make_checkout(tmp_path, outside)
    sandbox = get_sandbox("bwrap", checkout=checkout, network=False) if is_sandboxed else None
    command = f"{sys.executable} -m pytest -q"
    ctx = GateContext(checkout, Task(id="t", kind="write-tests"), "HEAD", command, sandbox=sandbox)
    try:
        report = run_tests(ctx)
        assert outside.exists() is not is_sandboxed
    finally:
        outside.unlink(missing_ok=True)
    # outcomes came back from inside the sandbox
    assert bool(report.failed) is is_sandboxed and bool(report.passed) is not is_sandboxed


def test_tools_under_tmp_stay_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH entry under the host's /tmp (say, a venv there) still runs inside the private /tmp."""
    tools = tmp_path / "venv" / "bin"
    tools.mkdir(parents=True)
    (tools / "hello-tool").write_text("#!/bin/sh\necho hello from a tool\n")
    (tools / "hello-tool").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{Path(sys.executable).parent}:/usr/bin:/bin")
    checkout = make_checkout(tmp_path, tmp_path / "unused")
    sandbox = get_sandbox("bwrap", checkout=checkout, network=False)
    argv = sandbox.wrap(["sh", "-c", f"{tools}/hello-tool && touch {tools}/planted"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert "hello from a tool" in proc.stdout
    assert proc.returncode != 0 and not (tools / "planted").exists()  # visible, but read-only
