"""Inside the sandbox the agent sees its checkout, its private HOME and /tmp, and the tools: no other file
of the runner's (other attempts, the state folder, the source repo and its queue) nor the host's home."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_runner.core.protocols import Sandbox
from agent_runner.worker.sandbox import SandboxPaths, get_sandbox, probe_bwrap

BWRAP = shutil.which("bwrap")
pytestmark = pytest.mark.skipif(
    BWRAP is None or probe_bwrap(BWRAP) is not None,
    reason="bubblewrap is not installed or not usable here (.ci/run installs it)",
)
TOOL = "#!/bin/sh\necho tool ran\n"
RUNNER_GIT = ".agent-runner/checkouts/mine-1.git"  # the runner's git dir beside the checkout


@dataclass(frozen=True)
class Layout:
    """A source repo holding the state folder: this attempt's checkout and HOME beside another attempt's."""

    repo: Path
    host_home: Path
    checkout: Path
    home: Path
    secrets: dict[str, Path]  # planted text -> the file holding it

    def sandbox(self) -> Sandbox:
        """Return the sandbox the runner builds for this attempt."""
        state = self.repo / ".agent-runner"
        paths = SandboxPaths(
            private_home=self.home, state_dir=state, source_repo=self.repo,
            borrowed_objects=self.checkout.with_name("mine-1.git") / "objects",
        )  # fmt: skip
        return get_sandbox("bwrap", checkout=self.checkout, network=False, paths=paths)

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        """Run a bash script in the checkout through the sandbox, as the worker would (host HOME and PATH)."""
        env = {"PATH": os.environ["PATH"], "HOME": str(self.host_home)}
        argv = self.sandbox().wrap(["bash", "-c", script])
        return subprocess.run(argv, cwd=self.checkout, env=env, capture_output=True, text=True, timeout=120)


def plant(path: Path, text: str, *, mode: int = 0o644) -> Path:
    """Write `text` to `path`, making its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A folder outside /tmp (the sandbox's /tmp is private anyway, which would hide a leak)."""
    base = Path(tempfile.mkdtemp(prefix="agent-runner-sandbox-", dir="/var/tmp"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def layout(outside_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """Plant secrets where a careless sandbox shows them; HOME points at a planted host home."""
    home, repo = outside_tmp / "host-home", outside_tmp / "repo"
    state = repo / ".agent-runner"
    checkout = state / "checkouts" / "mine-1"
    plant(checkout / "test_calc.py", "def test_one():\n    assert 1 + 1 == 2\n")
    plant(repo / ".venv" / "bin" / "hello-tool", TOOL, mode=0o755)  # a toolchain inside a hidden folder
    plant(checkout.with_name("mine-1.git") / "objects" / "ab" / "cdef", "borrowed object")
    private_home = state / "runs" / "mine" / "1" / "home"
    private_home.mkdir(parents=True)
    planted = {
        "NPM-SECRET": home / ".npmrc",
        "HISTORY-SECRET": home / ".bash_history",
        "CLAUDE-SECRET": home / ".claude" / "x",
        "QUEUE-SECRET": repo / "tasks" / "queue.jsonl",
        "REPO-SECRET": repo / ".env",
        "OTHER-CHECKOUT-SECRET": state / "checkouts" / "other-1" / "calc.py",
        "OTHER-RUN-SECRET": state / "runs" / "other" / "1" / "trajectory.jsonl",
        "RUNNER-GIT-SECRET": checkout.with_name("mine-1.git") / "config",
        "POOL-SECRET": state / "pool" / "ready" / "x",
    }
    for text, path in planted.items():
        plant(path, text)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{repo / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return Layout(repo, home, checkout, private_home, planted)


def test_runner_and_host_files_are_hidden(layout: Layout) -> None:
    """No planted file can be read or listed: only the checkout, the tool and borrowed objects show."""
    paths = " ".join(str(path) for path in layout.secrets.values())
    proc = layout.run(f"cat {paths} 2>&1; find {layout.repo} {layout.host_home} -type f 2>&1; true")
    leaked = [text for text in layout.secrets if text in proc.stdout]
    assert leaked == [], proc.stdout
    listed = {Path(line) for line in proc.stdout.splitlines() if line.startswith("/")}
    borrowed = layout.checkout.with_name("mine-1.git") / "objects" / "ab" / "cdef"
    expected = {layout.checkout / "test_calc.py", layout.repo / ".venv" / "bin" / "hello-tool", borrowed}
    assert listed == expected, proc.stdout


def test_tools_run_and_private_places_are_writable(layout: Layout) -> None:
    """python, ruff, git, pytest and a tool from a hidden folder run; HOME and /tmp take writes."""
    script = (
        "set -e; python -c 'print(\"python ran\")'; ruff --version; git --version; hello-tool; "
        "python -m pytest -q -p no:cacheprovider test_calc.py; "
        'echo home > "$HOME/h.txt"; echo tmp > /tmp/t.txt; cat "$HOME/h.txt" /tmp/t.txt; echo "HOME=$HOME"'
    )
    proc = layout.run(script)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for seen in ("python ran", "ruff ", "git version", "tool ran", "1 passed", "home\ntmp\n"):
        assert seen in proc.stdout, proc.stdout
    assert f"HOME={layout.home}" in proc.stdout
    assert (layout.home / "h.txt").read_text() == "home\n"


@pytest.mark.parametrize(
    ("shown", "beside"), [(".venv/bin", ".env"), (f"{RUNNER_GIT}/objects", f"{RUNNER_GIT}/config")]
)
def test_folders_shown_inside_hidden_ones_are_read_only(layout: Layout, shown: str, beside: str) -> None:
    """A toolchain in the repo, the borrowed objects: readable, not writable; nothing beside them shows."""
    folder = layout.repo / shown
    proc = layout.run(f"ls {folder}; touch {folder}/planted 2>&1; cat {layout.repo / beside} 2>&1; true")
    assert "Read-only file system" in proc.stdout and not (folder / "planted").exists()
    assert "No such file or directory" in proc.stdout and "SECRET" not in proc.stdout
    assert ("hello-tool" if shown.endswith("bin") else "ab") in proc.stdout.splitlines()
