"""Sandboxes for the agent's shell: bubblewrap (checkout and a private /tmp writable, no network) or none.

`get_sandbox("auto", ...)` probes bubblewrap once per process (a `bwrap ... true` run) and falls back to no
sandbox with one warning when it does not work here; `"bwrap"` raises SandboxError instead.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agent_runner.errors import SandboxError
from agent_runner.protocols import Sandbox

log = logging.getLogger(__name__)

MODES = ("auto", "bwrap", "none")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap) "
    'or set sandbox = "none" in [tool.agent-runner] to run the agent\'s shell unconfined'
)
# Credential stores in the home folder the agent has no reason to read (masked; / is read-only anyway).
HIDDEN_HOME_PATHS = (
    ".ssh",
    ".aws",
    ".gnupg",
    ".docker",
    ".config/gh",
    ".netrc",
    ".git-credentials",
    ".pypirc",
)
_warned: set[str] = set()  # fall-back warnings already given in this process (once each, by design)


@dataclass
class NoSandbox:
    """Runs commands as they are (the checkout is the working directory, nothing more)."""

    name: str = "none"

    def wrap(self, argv: list[str]) -> list[str]:
        """Return `argv` unchanged."""
        return list(argv)


@dataclass
class BwrapSandbox:
    """Runs commands under bubblewrap: / read-only, the checkout and a private /tmp writable."""

    bwrap: str
    checkout: Path
    network: bool = False
    home: Path | None = None
    name: str = "bwrap"

    def wrap(self, argv: list[str]) -> list[str]:
        """Return the bwrap command line that runs `argv` inside the sandbox."""
        return [self.bwrap, *self.options(), "--", *argv]

    def options(self) -> list[str]:
        """Return the bwrap options (mount order matters: later mounts cover earlier ones)."""
        checkout = str(self.checkout)
        opts = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        opts += self._keep_tools()
        opts += ["--bind", checkout, checkout, *self._protect_git(), *self._mask_home()]
        opts += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
        opts += ["--setenv", "TMPDIR", "/tmp", "--setenv", "XDG_CACHE_HOME", "/tmp/.cache"]  # writable places
        if not self.network:
            opts.append("--unshare-net")
        return opts

    def _keep_tools(self) -> list[str]:
        # The private /tmp hides the host's /tmp: keep the interpreter, PATH and HOME (read-only) visible.
        wanted = [sys.prefix, sys.base_prefix, str(Path(sys.executable).parent)]
        wanted += os.environ.get("PATH", "").split(os.pathsep) + ([str(self.home)] if self.home else [])
        kept: list[str] = []
        for raw in wanted:
            path = Path(raw).resolve() if raw else None
            if path and path.is_relative_to("/tmp") and path != Path("/tmp") and path.exists():
                kept.append(str(path))
        return [opt for path in sorted(set(kept)) for opt in ("--ro-bind", path, path)]

    def _protect_git(self) -> list[str]:
        # Hooks and config run code when the runner itself commits outside the sandbox: keep them read-only.
        git = self.checkout / ".git"
        opts: list[str] = []
        for part in (git / "hooks", git / "config"):
            if git.is_dir() and part.exists():
                opts += ["--ro-bind", str(part), str(part)]
        return opts

    def _mask_home(self) -> list[str]:
        if self.home is None:
            return []
        opts: list[str] = []
        for rel in HIDDEN_HOME_PATHS:
            path = self.home / rel
            if path.is_dir() and not self.checkout.is_relative_to(path):
                opts += ["--tmpfs", str(path)]
            elif path.is_file():
                opts += ["--ro-bind", "/dev/null", str(path)]
        return opts


def get_sandbox(mode: str, *, checkout: Path, network: bool) -> Sandbox:
    """Return the sandbox for `mode` ("auto" | "bwrap" | "none") around `checkout`."""
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode '{mode}'; use one of: {', '.join(MODES)}")
    if mode == "none":
        return NoSandbox()
    bwrap = shutil.which("bwrap")
    problem = probe_bwrap(bwrap) if bwrap else "bwrap was not found on PATH"
    if problem is None and bwrap is not None:
        home = Path(os.environ["HOME"]) if os.environ.get("HOME") else None
        return BwrapSandbox(bwrap, Path(checkout).resolve(), network=network, home=home)
    if mode == "bwrap":
        raise SandboxError(f'sandbox = "bwrap" but bubblewrap cannot be used: {problem}; {INSTALL_HINT}')
    _warn_once(problem)
    return NoSandbox()


@functools.cache
def probe_bwrap(bwrap: str) -> str | None:
    """Run `bwrap ... true` once per binary; return None when it works, else what went wrong."""
    argv = BwrapSandbox(bwrap, Path("/tmp")).wrap(["true"])
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"running {bwrap} failed: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return f"{bwrap} exited with {proc.returncode}: {detail[-1] if detail else 'no output'}"
    return None


def _warn_once(problem: str | None) -> None:
    key = problem or "unknown"
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "sandbox: bubblewrap is not usable (%s); the agent's shell runs WITHOUT a sandbox (it can write "
        "outside the checkout and use the network). To fix: %s",
        key,
        INSTALL_HINT,
    )
