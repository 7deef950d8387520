"""The bubblewrap sandbox, run for real: filesystem, network, process isolation and the auto fall-back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.core.errors import SandboxError
from agent_runner.worker.sandbox import BwrapSandbox, NoSandbox, get_sandbox, probe_bwrap

BWRAP = shutil.which("bwrap")
needs_bwrap = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def run_in(sandbox: BwrapSandbox | NoSandbox, script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash script through the sandbox with the allowlisted environment."""
    argv = sandbox.wrap(["bash", "-c", script])
    return subprocess.run(argv, cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=30)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout folder with a .git/hooks folder, as a clone leaves it."""
    path = tmp_path / "checkout"
    (path / ".git" / "hooks").mkdir(parents=True)
    (path / ".git" / "config").write_text("[core]\n")
    return path


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on 127.0.0.1 that records the connections it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except TimeoutError:
                continue
            accepted.append(f"{addr[0]}:{addr[1]}")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


@needs_bwrap
def test_writes_land_only_in_checkout_and_private_tmp(checkout: Path, tmp_path: Path) -> None:
    """Writes inside the checkout reach the host; /tmp is private; the rest of / is read-only."""
    outside = tmp_path / "outside"
    outside.mkdir()
    probe = f"/usr/local/agent-runner-probe-{uuid.uuid4().hex}"
    sandbox = get_sandbox("bwrap", checkout=checkout, network=False)
    script = (
        f'echo in > {checkout}/inside.txt && echo tmp > "$TMPDIR/private.txt" && cat /tmp/private.txt '
        '&& mkdir -p "$XDG_CACHE_HOME/tool" '
        f"&& echo x > {outside}/escaped.txt; touch {probe} 2>&1; touch {Path.home()}/escaped 2>&1; true"
    )
    proc = run_in(sandbox, script, checkout)
    assert (checkout / "inside.txt").read_text() == "in\n"
    assert proc.stdout.startswith("tmp\n")
    assert "Read-only file system" in proc.stdout
    assert not (outside / "escaped.txt").exists()
    assert not Path(probe).exists()
    assert not (Path.home() / "escaped").exists()
    assert not Path("/tmp/private.txt").exists()


@needs_bwrap
def test_credential_files_in_home_are_hidden(checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~/.ssh and ~/.netrc read as empty inside the sandbox; other home files stay readable."""
    home = checkout / "home"  # under the checkout, so the private /tmp does not hide it anyway
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (home / ".netrc").write_text("machine x password hunter22")
    (home / "notes.txt").write_text("visible")
    monkeypatch.setenv("HOME", str(home))
    sandbox = get_sandbox("bwrap", checkout=checkout, network=False)
    proc = run_in(sandbox, f"cat {home}/.ssh/id_ed25519 {home}/.netrc {home}/notes.txt 2>&1", checkout)
    assert "PRIVATE KEY" not in proc.stdout and "hunter22" not in proc.stdout
    assert "visible" in proc.stdout


CONNECT = "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused"


@needs_bwrap
def test_no_network_blocks_loopback_listener(checkout: Path, listener: tuple[int, list[str]]) -> None:
    """Without network, a TCP connection to a listener on the host's 127.0.0.1 fails."""
    port, accepted = listener
    proc = run_in(get_sandbox("bwrap", checkout=checkout, network=False), CONNECT.format(port=port), checkout)
    assert "refused" in proc.stdout and "connected" not in proc.stdout
    assert accepted == []


@needs_bwrap
def test_network_true_allows_the_connection(checkout: Path, listener: tuple[int, list[str]]) -> None:
    """With network=True the same connection reaches the listener."""
    port, accepted = listener
    proc = run_in(get_sandbox("bwrap", checkout=checkout, network=True), CONNECT.format(port=port), checkout)
    assert "connected" in proc.stdout
    assert len(accepted) == 1


WALK = r"""
p=$$
while [ -n "$p" ] && [ "$p" -gt 0 ]; do
  echo "pid $p"; cat /proc/$p/environ 2>/dev/null | tr '\0' '\n'
  p=$(awk '{print $4}' /proc/$p/stat 2>/dev/null)
done
cat /proc/$PPID/environ 2>/dev/null | tr '\0' '\n'
for f in /proc/[0-9]*/environ; do cat "$f" 2>/dev/null | tr '\0' '\n'; done
"""
LAUNCHER = """
import json, subprocess, sys
argv = json.loads(sys.argv[1])
env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
sys.stdout.write(subprocess.run(argv, env=env, capture_output=True, text=True).stdout)
"""


def walk_ancestors(sandbox: BwrapSandbox | NoSandbox, checkout: Path, secret: str) -> str:
    """Run the ancestor walk under a parent process whose own environment holds `secret`."""
    import json

    env = {**CLEAN_ENV, "PLANTED_API_KEY": secret}
    argv = [sys.executable, "-c", LAUNCHER, json.dumps(sandbox.wrap(["bash", "-c", WALK]))]
    return subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=30).stdout


@needs_bwrap
def test_ancestor_environments_are_invisible(checkout: Path) -> None:
    """From inside, no ancestor's /proc/<pid>/environ (parent included) shows the parent's secret."""
    secret = f"sk-planted-{uuid.uuid4().hex}"
    assert secret in walk_ancestors(NoSandbox(), checkout, secret)  # the walk does find it when unconfined
    out = walk_ancestors(get_sandbox("bwrap", checkout=checkout, network=False), checkout, secret)
    assert "pid " in out
    assert secret not in out


FALLBACK = """
import logging, sys
from pathlib import Path
from agent_runner.core.errors import SandboxError
from agent_runner.worker.sandbox import get_sandbox
logging.basicConfig(format="%(levelname)s %(message)s")
names = [get_sandbox("auto", checkout=Path(sys.argv[1]), network=False).name for _ in range(3)]
print(",".join(names))
try:
    get_sandbox("bwrap", checkout=Path(sys.argv[1]), network=False)
except SandboxError as exc:
    print("ERROR", exc)
"""


def test_auto_falls_back_once_when_bwrap_is_missing(checkout: Path, tmp_path: Path) -> None:
    """Without bwrap on PATH, auto runs unsandboxed and warns once; bwrap mode says what to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    proc = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(checkout)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.splitlines()[0] == "none,none,none"
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert "WITHOUT a sandbox" in warnings[0] and "apt-get install bubblewrap" in warnings[0]
    assert "ERROR" in proc.stdout and "apt-get install bubblewrap" in proc.stdout


def test_unknown_mode_is_refused(checkout: Path) -> None:
    """A typo in the sandbox mode is an error that lists the modes."""
    with pytest.raises(SandboxError, match="auto, bwrap, none"):
        get_sandbox("firejail", checkout=checkout, network=False)


def test_none_mode_leaves_the_command_alone(checkout: Path) -> None:
    """sandbox = none wraps nothing."""
    sandbox = get_sandbox("none", checkout=checkout, network=False)
    assert sandbox.name == "none"
    assert sandbox.wrap(["bash", "-c", "ls"]) == ["bash", "-c", "ls"]
